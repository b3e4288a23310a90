"""Blend specs and blending reproduce NVIDIA's layer-swap renders; mismatched pairs are named."""

import math

import numpy as np
import pytest
import torch

import stylemix
from stylemix import BlendSpec
from conftest import FIXTURES, random_generator, render

FIXTURE_SPECS = {
    "swap16_lowT": BlendSpec.swap(16, low="transfer"),
    "swap16_lowB": BlendSpec.swap(16, low="base"),
    "swap8_lowT": BlendSpec.swap(8),
    "linear0.5": BlendSpec.linear(0.5),
}


@pytest.mark.parametrize("label", list(FIXTURE_SPECS))
@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_blends_match_nvidia_renders(nv_pair, renders, label, psi):
    B = stylemix.blend(*nv_pair, FIXTURE_SPECS[label])
    z = torch.from_numpy(renders["z"])
    ws = B.mapping(z, None, truncation_psi=psi)
    assert (ws - torch.from_numpy(renders[f"{label}_psi{psi}_ws"])).abs().max() <= 1e-4
    img = B.synthesis(ws, noise_mode="const")
    assert (img - torch.from_numpy(renders[f"{label}_psi{psi}_img"])).abs().max() <= 1e-4


def test_per_resolution_api_from_the_issue(nv_pair, renders):
    spec = BlendSpec.per_resolution({4: 1, 8: 1, 16: 1})  # unlisted → base: same as swap16_lowT
    B = stylemix.blend(*nv_pair, spec)
    z = torch.from_numpy(renders["z"])
    assert (render(B, z) - torch.from_numpy(renders["swap16_lowT_psi1.0_img"])).abs().max() <= 1e-4


RES = [4, 8, 16, 32, 64]


def test_spec_alphas():
    assert BlendSpec.swap(16).alphas(RES) == {4: 1, 8: 1, 16: 1, 32: 0, 64: 0}
    assert BlendSpec.swap(16, low="base").alphas(RES) == {4: 0, 8: 0, 16: 0, 32: 1, 64: 1}
    assert BlendSpec.linear(0.25).alphas(RES) == {r: 0.25 for r in RES}
    assert BlendSpec.per_resolution({8: 0.5}).alphas(RES) == {4: 0, 8: 0.5, 16: 0, 32: 0, 64: 0}
    ramp = BlendSpec.smooth(16, 1.0).alphas(RES)
    assert ramp[16] == pytest.approx(0.5)
    assert all(ramp[a] > ramp[b] for a, b in zip(RES, RES[1:]))  # low from transfer: decreasing
    assert ramp[4] == pytest.approx(1 / (1 + math.exp(-2)))
    up = BlendSpec.smooth(16, 0.5, low="base").alphas(RES)
    assert all(up[a] < up[b] for a, b in zip(RES, RES[1:]))


@pytest.mark.parametrize("make,needle", [
    (lambda: BlendSpec.swap(12), "power of two"),
    (lambda: BlendSpec.swap(16, low="middle"), "low must be"),
    (lambda: BlendSpec.linear(float("nan")), "finite"),
    (lambda: BlendSpec.smooth(16, 0), "width must be > 0"),
    (lambda: BlendSpec.per_resolution({3: 1}), "not a power of two"),
    (lambda: BlendSpec.swap(16, mapping="other"), "mapping must be"),
    (lambda: BlendSpec.per_resolution({128: 1}).alphas(RES), "α given for 128 px"),
])
def test_bad_specs(make, needle):
    with pytest.raises(stylemix.BlendSpecError, match=needle):
        make()


def test_describe_labels_are_file_safe():
    labels = [BlendSpec.swap(16).describe(), BlendSpec.linear(0.5, mapping="transfer").describe(),
              BlendSpec.smooth(16, 0.5).describe(), BlendSpec.per_resolution({4: 1, 8: 0.5}).describe()]
    assert labels == ["swap16-lowT", "alpha0.5-map1", "smooth16w0.5-lowT", "res4-1_8-0.5"]
    assert all("/" not in l and " " not in l for l in labels)


def test_spec_dict_round_trip():
    for spec in (BlendSpec.swap(8, low="base"), BlendSpec.smooth(32, 0.7, mapping=0.3),
                 BlendSpec.per_resolution({4: 1, 16: 0.2})):
        assert BlendSpec.from_dict(spec.to_dict()) == spec


def test_every_parameter_follows_its_block():
    A, T = random_generator(0), random_generator(1)
    B = stylemix.blend(A, T, BlendSpec.per_resolution({8: 1, 16: 0.25}))
    a, t, b = A.state_dict(), T.state_dict(), B.state_dict()
    for name in b:
        if name.startswith("synthesis.b8."):
            want = t[name]
        elif name.startswith("synthesis.b16.") and "noise_const" not in name and "resample" not in name:
            want = torch.lerp(a[name], t[name], 0.25)
        else:
            want = a[name]  # other blocks, mapping, w_avg, and noise maps where α ≤ 0.5
        assert torch.allclose(b[name], want), name
    assert torch.equal(b["synthesis.b8.conv0.noise_const"], t["synthesis.b8.conv0.noise_const"])
    assert torch.equal(b["synthesis.b8.torgb.weight"], t["synthesis.b8.torgb.weight"])
    assert torch.equal(b["synthesis.b4.const"], a["synthesis.b4.const"])


def test_mapping_source():
    A, T = random_generator(0), random_generator(1)
    z = torch.randn(2, 16)
    B = stylemix.blend(A, T, BlendSpec.swap(8, mapping="transfer"))
    assert torch.equal(B.mapping(z), T.mapping(z))
    assert torch.equal(B.mapping.w_avg, T.mapping.w_avg)
    H = stylemix.blend(A, T, BlendSpec.linear(0, mapping="blend"))
    assert torch.allclose(H.mapping.fc0.weight, (A.mapping.fc0.weight + T.mapping.fc0.weight) / 2)
    # w_avg of a blended mapping is re-estimated from its own outputs, not lerped.
    est = H.mapping(torch.randn(20000, 16))[:, 0].mean(0)
    assert (H.mapping.w_avg - est).abs().max() < 0.1


def test_blend_does_not_touch_parents():
    A, T = random_generator(0), random_generator(1)
    before = {k: v.clone() for k, v in A.state_dict().items()}
    stylemix.blend(A, T, BlendSpec.linear(0.5))
    assert all(torch.equal(before[k], v) for k, v in A.state_dict().items())


def test_blend_records_its_recipe(nv_pair):
    B = stylemix.blend(*nv_pair, BlendSpec.swap(16))
    assert B.blend_info["label"] == "swap16-lowT"
    assert B.blend_info["alphas"] == {"4": 1.0, "8": 1.0, "16": 1.0, "32": 0.0, "64": 0.0}
    assert B.source == nv_pair[0].source


@pytest.mark.parametrize("other,needle", [
    (dict(img_resolution=64), r"the transfer model was not fine-tuned from this base \(first difference: "
                              r"base makes 32 px images, transfer 64 px; "
                              r"'synthesis\.b64\.\S+' exists in transfer but not in base\)"),
    (dict(channel_max=16), r"not fine-tuned from this base \(first difference: "
                           r"'synthesis\.b4\.const' has shape \[32, 4, 4\] in base but \[16, 4, 4\]"),
    (dict(architecture="resnet"), "'skip' generator with a StyleGAN2 'resnet' one: the transfer model was not "
                                  "fine-tuned from this base"),
    (dict(w_dim=8), r"w_dim 16 in base, 8 in transfer; 'synthesis\.b4\.conv1\.affine\.weight' has shape"),
])
def test_mismatched_pairs_name_the_first_difference(other, needle):
    with pytest.raises(stylemix.IncompatibleModelsError, match=needle):
        stylemix.blend(random_generator(0), random_generator(1, **other), BlendSpec.swap(8))


def test_blend_many_combines_models_per_resolution():
    A, T1, T2 = random_generator(0), random_generator(1), random_generator(2)
    B = stylemix.blend_many(A, [T1, T2], [BlendSpec.per_resolution({4: 1, 8: 0.5}),
                                          BlendSpec.per_resolution({8: 0.25, 32: 1})])
    a, t1, t2, b = A.state_dict(), T1.state_dict(), T2.state_dict(), B.state_dict()
    w = "synthesis.b{}.conv1.weight"
    assert torch.allclose(b[w.format(4)], t1[w.format(4)], atol=1e-6)
    assert torch.allclose(b[w.format(8)], a[w.format(8)] + 0.5 * (t1[w.format(8)] - a[w.format(8)])
                          + 0.25 * (t2[w.format(8)] - a[w.format(8)]), atol=1e-6)
    assert torch.equal(b[w.format(16)], a[w.format(16)])
    assert torch.allclose(b[w.format(32)], t2[w.format(32)], atol=1e-6)
    assert torch.equal(b["mapping.fc0.weight"], a["mapping.fc0.weight"])
    assert torch.equal(b["synthesis.b32.conv1.noise_const"], t2["synthesis.b32.conv1.noise_const"])
    M = stylemix.blend_many(A, [T1, T2], [BlendSpec.linear(0), BlendSpec.linear(0)], mapping=1)
    assert torch.equal(M.mapping.w_avg, T2.mapping.w_avg)


def test_blend_many_with_one_model_matches_blend(nv_pair, renders):
    B = stylemix.blend_many(nv_pair[0], [nv_pair[1]], [BlendSpec.swap(16)])
    z = torch.from_numpy(renders["z"])
    assert (render(B, z) - torch.from_numpy(renders["swap16_lowT_psi1.0_img"])).abs().max() <= 1e-4


def test_blend_many_checks_its_inputs():
    A = random_generator(0)
    with pytest.raises(stylemix.BlendSpecError, match="one blend spec per"):
        stylemix.blend_many(A, [random_generator(1)], [])
    with pytest.raises(stylemix.IncompatibleModelsError,
                       match=r"the transfer model was not fine-tuned from this base \(first difference: "
                             r"base makes 32 px images, transfer 64 px"):
        stylemix.blend_many(A, [random_generator(1, img_resolution=64)], [BlendSpec.swap(8)])
    with pytest.raises(stylemix.IncompatibleModelsError, match="the transfer 2 model was not fine-tuned"):
        stylemix.blend_many(A, [random_generator(1), random_generator(2, channel_max=16)],
                            [BlendSpec.swap(8), BlendSpec.swap(8)])
    with pytest.raises(stylemix.BlendSpecError, match="mapping must name one of the 1 transferred"):
        stylemix.blend_many(A, [random_generator(1)], [BlendSpec.swap(8)], mapping=1)
    with pytest.raises(stylemix.BlendSpecError, match="channel α is supported for two-model blends only"):
        stylemix.blend_many(A, [random_generator(1)], [BlendSpec.swap(8).with_channels(8, [0], 1.0)])


# -- BlendSpec is checked however it is made ------------------------------------------------

@pytest.mark.parametrize("d,needle", [
    ({"kind": "swap", "r_swap": 16, "low": "sideways"}, "low must be 'base' or 'transfer', not 'sideways'"),
    ({"kind": "swap", "r_swap": 3}, "r_swap 3 is not a power of two"),
    ({"kind": "swap", "r_swap": 16.5}, "r_swap must be a whole number"),
    ({"kind": "swap"}, "a swap blend needs r_swap"),
    ({"kind": "swap", "r_swap": 16, "alpha": 0.5}, "a swap blend takes no alpha"),
    ({"kind": "twirl"}, "unknown blend kind 'twirl'"),
    ({"r_swap": 16}, "a blend spec needs a kind"),
    ({"kind": "linear", "alpha": 0.5, "colour": 1}, "unknown blend spec field 'colour'"),
    ({"kind": "linear", "alpha": "lots"}, "alpha must be a number"),
    ({"kind": "linear", "alpha": 0.5, "mapping": "sideways"}, "mapping must be"),
    ({"kind": "smooth", "centre": -4, "width": 1}, "smooth centre must be a positive resolution"),
    ({"kind": "per_resolution", "table": [[8, 1], [8, 0.5]]}, "α given twice for 8 px"),
    ({"kind": "per_resolution", "table": [[8]]}, "per-resolution entry must have 2 values"),
    ({"kind": "per_resolution", "table": 7}, "table must be a list"),
    ({"kind": "swap", "r_swap": 16, "table": [[8, 1]]}, "a swap blend takes no per-resolution table"),
    ({"kind": "swap", "r_swap": 16, "channel_table": [[16, -1, 0.0]]}, "channel -1 is negative"),
    ({"kind": "swap", "r_swap": 16, "channel_table": [[12, 1, 0.0]]}, "resolution 12 is not a power of two"),
])
def test_from_dict_checks_like_the_constructors(d, needle):
    with pytest.raises(stylemix.BlendSpecError, match=needle):
        BlendSpec.from_dict(d)


def test_replace_and_from_dict_normalise_and_check():
    import dataclasses
    with pytest.raises(stylemix.BlendSpecError, match="r_swap 3 is not a power of two"):
        dataclasses.replace(BlendSpec.swap(16), r_swap=3)
    spec = BlendSpec.from_dict({"kind": "per_resolution", "table": [[16, 1], [4, "0.5"]], "mapping": "transfer"})
    assert spec == BlendSpec.per_resolution({4: 0.5, 16: 1.0}, mapping="transfer")
    assert spec.table == ((4, 0.5), (16, 1.0)) and spec.mapping == 1.0
    assert BlendSpec.from_dict({"kind": "swap", "r_swap": 16.0}).r_swap == 16
    chan = BlendSpec.swap(16).with_channels(16, [3, 1], 0.25)
    assert BlendSpec.from_dict(chan.to_dict()) == chan
    assert chan.channel_table == ((16, 1, 0.25), (16, 3, 0.25))


# -- one picking rule for noise maps --------------------------------------------------------

NOISE = "synthesis.b8.conv1.noise_const"


@pytest.mark.parametrize("alpha,winner", [(0.5, "base"), (0.5 + 1e-7, "transfer"), (0.49, "base"),
                                          (1.2, "transfer"), (-0.3, "base")])
def test_noise_maps_follow_alpha_above_one_half(alpha, winner):
    A, T = random_generator(0), random_generator(1)
    spec = BlendSpec.per_resolution({8: alpha})
    want = (T if winner == "transfer" else A).state_dict()[NOISE]
    assert torch.equal(stylemix.blend(A, T, spec).state_dict()[NOISE], want)
    assert torch.equal(stylemix.blend_many(A, [T], [spec]).state_dict()[NOISE], want)


@pytest.mark.parametrize("weights,winner", [((0.4, 0.4), 1), ((0.3, 0.3), 0), ((0.2, 0.6), 2),
                                            ((0.5, 0.0), 0), ((0.5, 0.5), 1)])
def test_many_models_pick_the_heaviest_ties_to_the_earlier(weights, winner):
    """Base weighs 1 − Σα; the heaviest model's noise map is taken; a tie goes to base, then to
    the earlier transfer."""
    models = [random_generator(i) for i in range(3)]
    specs = [BlendSpec.per_resolution({8: w}) for w in weights]
    B = stylemix.blend_many(models[0], models[1:], specs)
    assert torch.equal(B.state_dict()[NOISE], models[winner].state_dict()[NOISE])


# -- pairs whose mapping networks differ (issue 15, case 6) ---------------------------------

FIELD = FIXTURES / "field"
MAP_SPECS = {"swap8_lowT": BlendSpec.swap(8), "swap16_lowT": BlendSpec.swap(16),
             "swap8_lowT_mapT": BlendSpec.swap(8, mapping="transfer"),
             "transfer": BlendSpec.linear(1.0, mapping="transfer")}


@pytest.fixture(scope="module")
def map_pair():
    return stylemix.load_generator(FIELD / "map8_base.pkl"), stylemix.load_generator(FIELD / "map2_transfer.pkl")


@pytest.fixture(scope="module")
def map_renders():
    return dict(np.load(FIELD / "map8_map2_renders.npz"))


def assert_renders(G, refs, label, psi):
    z = torch.from_numpy(refs["z"])
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=psi)
        img = G.synthesis(ws, noise_mode="const")
    assert (ws - torch.from_numpy(refs[f"{label}_psi{psi}_ws"])).abs().max() <= 1e-4, label
    assert (img - torch.from_numpy(refs[f"{label}_psi{psi}_img"])).abs().max() <= 1e-4, label


@pytest.mark.parametrize("label", list(MAP_SPECS))
@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_mapping_depths_differ_blend_by_synthesis(map_pair, map_renders, label, psi):
    B = stylemix.blend(*map_pair, MAP_SPECS[label])
    assert B.config.mapping_layers == (2 if MAP_SPECS[label].mapping else 8)
    assert_renders(B, map_renders, label, psi)


def test_mixing_unequal_mapping_networks_says_why(map_pair):
    for mapping in ("blend", 0.3):
        with pytest.raises(stylemix.BlendSpecError,
                           match=r"the mapping networks of base and transfer differ \(8 and 2 layers\), so "
                                 r"they cannot be blended: take the mapping from base or from transfer"):
            stylemix.blend(*map_pair, BlendSpec.swap(8, mapping=mapping))


@pytest.mark.parametrize("mapping,suffix", [("base", "swap8_lowT"), ("transfer", "swap8_lowT_mapT")])
def test_mapping_depths_differ_export(map_pair, map_renders, tmp_path, mapping, suffix):
    """A pickle written from such a blend loads back with the right depth: with the transfer's
    mapping network the transfer's pickle is the template that fits."""
    B = stylemix.blend(*map_pair, BlendSpec.swap(8, mapping=mapping))
    for name in ("x.pkl", "x.safetensors"):
        stylemix.save(B, tmp_path / name)
        assert_renders(stylemix.load_generator(tmp_path / name), map_renders, suffix, 0.7)
    assert B.source == map_pair[1 if mapping == "transfer" else 0].source


@pytest.mark.parametrize("flags,label", [(["--swap", "8"], "swap8_lowT"), (["--swap", "16"], "swap16_lowT"),
                                         (["--swap", "8", "--mapping", "transfer"], "swap8_lowT_mapT")])
def test_mapping_depths_differ_cli(map_renders, tmp_path, flags, label):
    from stylemix.cli import main
    out = tmp_path / "b.safetensors"
    assert main(["blend", str(FIELD / "map8_base.pkl"), str(FIELD / "map2_transfer.pkl"), *flags,
                 "-o", str(out)]) == 0
    for psi in (1.0, 0.7):
        assert_renders(stylemix.load_generator(out), map_renders, label, psi)


def test_mapping_depths_differ_cli_refuses_a_mix(tmp_path, capsys):
    from stylemix.cli import main
    rc = main(["blend", str(FIELD / "map8_base.pkl"), str(FIELD / "map2_transfer.pkl"), "--swap", "8",
               "--mapping", "blend", "-o", str(tmp_path / "b.safetensors")])
    err = capsys.readouterr().err
    assert rc == 1 and "differ (8 and 2 layers)" in err and "from base or from transfer" in err
    assert not (tmp_path / "b.safetensors").exists()


def test_conditional_transfer_of_an_unconditional_base():
    """A conditional model fine-tuned from an unconditional base: same synthesis, a mapping
    network with a class embedding. Mapping from base → unconditional blend; from transfer →
    conditional; mixing them is refused."""
    A, T = random_generator(0), random_generator(1, c_dim=4)
    z, c = torch.randn(3, 16), torch.eye(4)[[0, 2, 3]]
    B = stylemix.blend(A, T, BlendSpec.swap(8))
    assert B.c_dim == 0 and torch.equal(B.mapping(z), A.mapping(z))
    C = stylemix.blend(A, T, BlendSpec.swap(8, mapping="transfer"))
    assert C.c_dim == 4 and C.config.c_dim == 4 and torch.equal(C.mapping(z, c), T.mapping(z, c))
    assert torch.equal(C.synthesis.b8.conv1.weight, T.synthesis.b8.conv1.weight)
    assert torch.equal(C.synthesis.b16.conv1.weight, A.synthesis.b16.conv1.weight)
    with pytest.raises(stylemix.BlendSpecError,
                       match=r"differ \(unconditional and conditional with 4 classes\).*from base or from transfer"):
        stylemix.blend(A, T, BlendSpec.linear(0.5, mapping=0.5))
    many = stylemix.blend_many(A, [T, random_generator(2)], [BlendSpec.swap(8), BlendSpec.linear(0)], mapping=0)
    assert many.c_dim == 4 and torch.equal(many.mapping(z, c), T.mapping(z, c))
