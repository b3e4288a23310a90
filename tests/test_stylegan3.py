"""StyleGAN3 (-t and -r): safe loading, NVIDIA's renders reproduced, blending by sampling rate,
export, and the errors a user meets when a pair or option does not fit."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from skimage import data

import stylemix
from stylemix import BlendSpec, BlendSpecError, ExportError, IncompatibleModelsError, ModelLoadError
from stylemix.engine import BlendEngine
from stylemix.networks.stylegan3 import StyleGAN3Config, _resample_reference, resample
from stylemix.project import ProjectionConfig
from stylemix.toonify import Toonifier

from conftest import FIXTURES, NV_TRANSFER

SG3 = FIXTURES / "stylegan3"
KINDS = ["sg3t64", "sg3r64"]


def pair(kind):
    return (stylemix.load_generator(SG3 / f"{kind}_base.pkl"),
            stylemix.load_generator(SG3 / f"{kind}_transfer.pkl"))


@pytest.fixture(scope="module", params=KINDS)
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def models(kind):
    return pair(kind)


@pytest.fixture(scope="module")
def refs(kind):
    return dict(np.load(SG3 / f"{kind}_renders.npz"))


@pytest.mark.parametrize("label", ["base", "transfer"])
@pytest.mark.parametrize("psi", ["1.0", "0.7"])
def test_reproduces_nvidia_renders(models, refs, label, psi):
    G = models[0] if label == "base" else models[1]
    z = torch.from_numpy(refs["z"]).float()
    ws = G.mapping(z, truncation_psi=float(psi))
    assert (ws - torch.from_numpy(refs[f"{label}_psi{psi}_ws"])).abs().max() < 1e-5
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(refs[f"{label}_psi{psi}_ws"]))
    assert (img - torch.from_numpy(refs[f"{label}_psi{psi}_img"])).abs().max() < 1e-4


@pytest.mark.parametrize("taps", [(12,), (24,), (12, 12)])
@pytest.mark.parametrize("up,down,pad", [(2, 1, (9, 8, 9, 8)), (4, 1, (-6, -9, -6, -9)),
                                         (1, 2, (0, 0, 0, 0)), (2, 2, (3, -2, 1, 4))])
def test_fast_resampling_equals_its_definition(taps, up, down, pad):
    gen = torch.Generator().manual_seed(up * 10 + down)
    f, x = torch.rand(taps, generator=gen), torch.randn(2, 3, 30, 27, generator=gen)
    want = _resample_reference(x, f, up, down, pad, gain=up * up * 1.5)
    got = resample(x, f, up, down, pad, gain=up * up * 1.5)
    assert got.shape == want.shape and (got - want).abs().max() < 1e-5


def test_layers_are_grouped_by_sampling_rate(models, refs):
    G = models[0]
    assert G.config.architecture in ("stylegan3-t", "stylegan3-r")
    assert G.block_resolutions == [16, 32, 64]
    groups = G.layers_by_group()
    assert groups[16][0] == "input"
    assert [n for names in groups.values() for n in names if n != "input"] == list(refs["layer_names"])
    for rate, names in groups.items():
        for name in names[1 if rate == 16 else 0:]:
            assert G.resolution_of(f"synthesis.{name}.weight") == rate
    assert G.resolution_of("mapping.fc0.weight") is None


def _hand_swap(A, B, groups_from_transfer):
    """The swap built by hand: whole layers copied from transfer, by their sampling rate."""
    layers = A.layers_by_group()
    take = {name for rate in groups_from_transfer for name in layers[rate]}
    state = {k: (B.state_dict()[k] if k.split(".")[1] in take and k.startswith("synthesis.") else v)
             for k, v in A.state_dict().items()}
    out = pair("sg3t64" if A.config.architecture.endswith("t") else "sg3r64")[0]
    out.load_state_dict(state)
    return out


def test_swap_takes_whole_layers_by_rate(models, refs):
    A, B = models
    ws = torch.from_numpy(refs["base_psi0.7_ws"][:2])
    M = stylemix.blend(A, B, BlendSpec.swap(16))
    expected = _hand_swap(A, B, [16])
    with torch.no_grad():
        got, want = M.synthesis(ws), expected.synthesis(ws)
        assert torch.equal(got, want)
        # and it is neither parent
        assert (got - A.synthesis(ws)).abs().max() > 1e-2
        assert (got - B.synthesis(ws)).abs().max() > 1e-2


def test_engine_matches_blend(models, refs):
    A, B = models
    z = torch.from_numpy(refs["z"][:2]).float()
    engine = BlendEngine(A, B)
    for spec in [BlendSpec.swap(32, low="base"), BlendSpec.per_resolution({16: 0.3, 64: 0.8}),
                 BlendSpec.swap(16, mapping="transfer")]:
        with engine.session(spec) as live, torch.no_grad():
            got = live.synthesis(live.mapping(z, truncation_psi=0.7))
        M = stylemix.blend(A, B, spec)
        with torch.no_grad():
            want = M.synthesis(M.mapping(z, truncation_psi=0.7))
        assert (got - want).abs().max() < 1e-5, spec.describe()


def test_linear_one_is_transfer(models, refs):
    A, B = models
    M = stylemix.blend(A, B, BlendSpec.linear(1.0, mapping="transfer"))
    with torch.no_grad():
        img = M.synthesis(torch.from_numpy(refs["transfer_psi1.0_ws"]))
    assert (img - torch.from_numpy(refs["transfer_psi1.0_img"])).abs().max() < 1e-4


def test_export_round_trips(models, refs, tmp_path, kind):
    A, B = models
    M = stylemix.blend(A, B, BlendSpec.swap(32))
    ws = torch.from_numpy(refs["base_psi1.0_ws"][:1])
    with torch.no_grad():
        want = M.synthesis(ws)
    for ext in ("pkl", "safetensors"):
        path = tmp_path / f"blend.{ext}"
        stylemix.save(M, path)
        R = stylemix.load_generator(path)
        assert R.config.architecture == A.config.architecture
        with torch.no_grad():
            assert torch.equal(R.synthesis(ws), want), ext
    # The .pkl is NVIDIA's file with new G_ema values (and the blend recipe before its STOP):
    # D and G untouched.
    from stylemix.formats.nvidia_pkl import _recipe_opcodes
    template = (SG3 / f"{kind}_base.pkl").read_bytes()
    written = (tmp_path / "blend.pkl").read_bytes()
    assert len(written) == len(template) - 1 + len(_recipe_opcodes(M.blend_info)) and written != template
    G_untouched = stylemix.load_generator(tmp_path / "blend.pkl", network="G")
    G_template = stylemix.load_generator(SG3 / f"{kind}_base.pkl", network="G")
    assert all(torch.equal(a, b) for a, b in zip(G_untouched.state_dict().values(),
                                                 G_template.state_dict().values()))
    with pytest.raises(ExportError, match="StyleGAN2 generators only"):
        stylemix.save(M, tmp_path / "blend.pt")


def test_incompatible_pairs_are_named(models):
    t_base = pair("sg3t64")[0]
    r_base = pair("sg3r64")[0]
    with pytest.raises(IncompatibleModelsError, match="stylegan3-t.*stylegan3-r"):
        stylemix.blend(t_base, r_base, BlendSpec.swap(16))
    with pytest.raises(IncompatibleModelsError, match="stylegan3"):
        stylemix.blend(t_base, stylemix.load_generator(NV_TRANSFER), BlendSpec.swap(16))


def test_channel_alpha_is_refused_clearly(models):
    A, B = models
    spec = BlendSpec.swap(16).with_channels(16, [3], 1.0)
    with pytest.raises(BlendSpecError, match="StyleGAN2 models only"):
        stylemix.blend(A, B, spec)
    with pytest.raises(BlendSpecError, match="StyleGAN2 models only"):
        BlendEngine(A, B).set_spec(spec)


def test_unknown_resolution_is_refused(models):
    with pytest.raises(BlendSpecError, match="16, 32, 64"):
        stylemix.blend(*models, BlendSpec.per_resolution({8: 1.0}))


def test_tampered_geometry_is_refused(models):
    d = json.loads(json.dumps(models[0].config.to_dict()))
    assert StyleGAN3Config.from_dict(d).num_ws == models[0].num_ws
    bad = json.loads(json.dumps(d))
    bad["layers"][3]["padding"][0] += 5  # the layer would no longer produce its declared size
    with pytest.raises(ModelLoadError, match="declares"):
        StyleGAN3Config.from_dict(bad)
    huge = json.loads(json.dumps(d))
    huge["input"]["channels"] = 10 ** 9
    with pytest.raises(ModelLoadError, match="impossible"):
        StyleGAN3Config.from_dict(huge)
    odd = json.loads(json.dumps(d))
    odd["layers"][5]["out_sampling_rate"] = 24.0
    with pytest.raises(ModelLoadError, match="power of two"):
        StyleGAN3Config.from_dict(odd)


def test_render_is_batch_independent(models):
    G = models[0]
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        together = G(z, truncation_psi=0.7)
        alone = torch.cat([G(z[i:i + 1], truncation_psi=0.7) for i in range(3)])
    assert (together - alone).abs().max() < 1e-5


def test_toonify_with_a_stylegan3_pair():
    A, B = pair("sg3t64")
    result = Toonifier(A, B).toonify(data.astronaut(), BlendSpec.swap(16), ProjectionConfig(steps=8))
    assert result.toon.size == (64, 64)
    assert np.abs(np.asarray(result.toon, float) - np.asarray(result.reconstruction, float)).mean() > 1


def test_cli_info_and_blend(tmp_path):
    base, transfer = SG3 / "sg3r64_base.pkl", SG3 / "sg3r64_transfer.pkl"
    run = lambda *args: subprocess.run([sys.executable, "-m", "stylemix", *map(str, args)],  # noqa: E731
                                       capture_output=True, text=True, timeout=300)
    info = run("info", base)
    assert info.returncode == 0 and "stylegan3-r" in info.stdout and "sampling rate" in info.stdout
    out = tmp_path / "b.safetensors"
    done = run("blend", base, transfer, "--swap", "32", "-o", out)
    assert done.returncode == 0, done.stderr
    assert "16:1, 32:1, 64:0" in done.stdout
    assert stylemix.load_generator(out).blend_info["label"] == "swap32-lowT"
    bad = run("blend", base, transfer, "--swap", "16", "--channels", "16:3=1", "-o", tmp_path / "c.pkl")
    assert bad.returncode != 0 and "StyleGAN2 models only" in bad.stderr


def test_many_blends_in_one_pass():
    from stylemix.batch_blend import BlendBatch
    A, B = pair("sg3t64")
    specs = [BlendSpec.swap(16), BlendSpec.swap(32, low="base")]
    z = torch.from_numpy(np.random.RandomState(5).randn(1, A.z_dim)).float()
    batched = BlendBatch(A, B).render(specs, z, psi=0.7)
    for i, spec in enumerate(specs):
        with torch.no_grad():
            alone = stylemix.blend(A, B, spec)(z, truncation_psi=0.7)
        assert (batched[i:i + 1] - alone).abs().max() < 1e-4


def test_several_models_blend_by_rate():
    from stylemix import blend_many
    A, B = pair("sg3t64")
    half = BlendSpec.per_resolution({16: 0.5})
    mixed = blend_many(A, [B, B], [half, half])  # two halves of one model: all of it at 16 px
    whole = stylemix.blend(A, B, BlendSpec.per_resolution({16: 1.0}))
    z = torch.from_numpy(np.random.RandomState(2).randn(1, A.z_dim)).float()
    with torch.no_grad():
        assert (mixed(z) - whole(z)).abs().max() < 1e-4
