"""Blend specs and blending reproduce NVIDIA's layer-swap renders; mismatched pairs are named."""

import math

import pytest
import torch

import stylemix
from stylemix import BlendSpec
from conftest import random_generator, render

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
    (dict(img_resolution=64), r"'synthesis\.b64\.\S+' exists in transfer but not in base \(base 32 px, transfer 64 px\)"),
    (dict(channel_max=16), r"'synthesis\.b4\.const' has shape \[32, 4, 4\] in base but \[16, 4, 4\]"),
    (dict(architecture="resnet"), "'skip' generator with a StyleGAN2 'resnet'"),
    (dict(w_dim=8), r"'synthesis\.b4\.conv1\.affine\.weight' has shape"),
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
    with pytest.raises(stylemix.IncompatibleModelsError):
        stylemix.blend_many(A, [random_generator(1, img_resolution=64)], [BlendSpec.swap(8)])
