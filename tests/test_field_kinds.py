"""More kinds of file from the field (issue 27): non-square TensorFlow forks, rosinality
checkpoints from before noise buffers, pickles of every protocol, SWAGAN checkpoints, and .pt
exports rosinality's Generator must be able to build."""

from __future__ import annotations

import argparse
import copy
import json

import pytest
import torch

import stylemix
from stylemix.cli import main
from stylemix.formats import detect_format, rosinality
from stylemix.networks import GeneratorConfig
from conftest import FIXTURES, NV_BASE, random_generator, render
from pickle_protocols import repickled
from test_field import _check, _refs, tf_pickle

FIELD = FIXTURES / "field"
TF_BASE = FIXTURES / "tf" / "skip64_base_tf.pkl"
ROS_TRAIN = FIELD / "rosinality_train_checkpoint.pt"
TOL = 1e-4


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------------------------------------
# Pickles of protocol 0 and 1: no PROTO header, text opcodes

@pytest.mark.parametrize("protocol", [0, 1, 2, 5])
def test_nvidia_pickle_of_any_protocol_renders_its_references(tmp_path, protocol):
    path = tmp_path / f"gray32_p{protocol}.pkl"
    path.write_bytes(repickled(FIELD / "gray32_base.pkl", protocol))
    assert path.read_bytes()[:1] != b"\x80" or protocol >= 2
    assert detect_format(path) == "pickle"
    G = stylemix.load_generator(path)
    assert _check(G, _refs("gray32_renders.npz"), "base") <= TOL
    T = stylemix.load_generator(FIELD / "gray32_transfer.pkl")
    B = stylemix.blend(G, T, stylemix.BlendSpec.swap(16))
    assert _check(B, _refs("gray32_renders.npz"), "swap16_lowT") <= TOL


@pytest.mark.parametrize("protocol", [0, 1])
def test_tf_pickle_of_protocol_0_and_1_renders_like_the_original(tmp_path, renders, protocol):
    path = tmp_path / f"tf_p{protocol}.pkl"
    path.write_bytes(repickled(TF_BASE, protocol))
    G = stylemix.load_generator(path)
    assert G.source.format == "tf_pkl"
    z = torch.from_numpy(renders["z"])
    assert (render(G, z, 0.7) - torch.from_numpy(renders["base_psi0.7_img"])).abs().max() <= TOL
    # No bytes to overwrite in place (they are text): export says so in one line.
    with pytest.raises(stylemix.ExportError, match="cannot locate the bytes"):
        stylemix.save(G, tmp_path / "again.pkl")


def test_text_that_is_not_a_pickle_is_still_refused(tmp_path):
    for content in (b"hello world.", b"(not really a pickle", b"cat\n.", b"}" * 10):
        path = tmp_path / "x.pkl"
        path.write_bytes(content)
        with pytest.raises(stylemix.ModelLoadError):
            stylemix.load_generator(path)


def test_protocol_0_pickle_asking_for_code_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"(dp0\nVG_ema\np1\ncos\nsystem\n(Vtrue\ntRs.")
    with pytest.raises(stylemix.UnsafeModelFileError, match="os.system"):
        stylemix.load_generator(path)


# ---------------------------------------------------------------------------------------------
# rosinality checkpoints written before noise buffers were registered

def _without_noise_buffers(path, out):
    ckpt = rosinality.read_checkpoint(path)
    for key in ("g", "g_ema"):
        if isinstance(ckpt.get(key), dict):
            ckpt[key] = {k: v for k, v in ckpt[key].items() if not k.startswith("noises.")}
    ckpt.pop("args", None)
    torch.save(ckpt, out)
    return out


def test_rosinality_checkpoint_without_noise_buffers_loads_and_renders(tmp_path, capsys):
    refs = _refs("rosinality_train_renders.npz")
    path = _without_noise_buffers(ROS_TRAIN, tmp_path / "old.pt")
    G = stylemix.load_generator(path)
    full = stylemix.load_generator(ROS_TRAIN)
    # Everything stored is the same; the maps are filled, the same on every load.
    stored = {k: v for k, v in full.state_dict().items() if not k.endswith("noise_const")}
    assert all(torch.equal(G.state_dict()[k], v) for k, v in stored.items())
    again = stylemix.load_generator(path)
    for name, m in G.named_modules():
        if hasattr(m, "noise_const"):
            assert torch.equal(m.noise_const, again.get_submodule(name).noise_const)
            assert m.noise_const.std() > 0.5
    # Renders without noise are the original's, exactly as for the complete file.
    z = torch.from_numpy(refs["z"])
    with torch.no_grad():
        G.mapping.w_avg.copy_(full.mapping.w_avg)
        ws = full.mapping(z, None)
        assert torch.allclose(G.synthesis(ws, noise_mode="none"), full.synthesis(ws, noise_mode="none"), atol=1e-6)
    assert any("no noise maps" in note for note in G.load_notes)
    rc, out, _ = run(capsys, "info", path)
    assert rc == 0 and "stores no noise maps" in out
    B = stylemix.blend(G, stylemix.load_generator(ROS_TRAIN, network="G"), stylemix.BlendSpec.swap(8))
    assert B.img_resolution == G.img_resolution


def test_a_partial_set_of_noise_buffers_is_still_an_error(tmp_path):
    ckpt = rosinality.read_checkpoint(ROS_TRAIN)
    ckpt["g_ema"] = {k: v for k, v in ckpt["g_ema"].items() if k != "noises.noise_1"}
    torch.save({"g_ema": ckpt["g_ema"], "latent_avg": ckpt.get("latent_avg")}, tmp_path / "p.pt")
    with pytest.raises(stylemix.ModelLoadError, match="noise_const"):
        stylemix.load_generator(tmp_path / "p.pt")


# ---------------------------------------------------------------------------------------------
# rosinality SWAGAN checkpoints

def _haar():
    """The four 2×2 Haar filters of rosinality's swagan.py (ll, lh, hl, hh)."""
    low = torch.full((1, 2), 2 ** -0.5)
    high = low.clone()
    high[0, 0] *= -1
    return low.T * low, high.T * low, low.T * high, high.T * high


def _swagan_state_dict():
    """A rosinality SWAGAN g_ema: StyleGAN2's layers, ToRGBs of 12 channels (RGB × 4 Haar
    sub-bands) with inverse/forward wavelet buffers, and a final inverse transform."""
    sd = dict(rosinality.read_checkpoint(ROS_TRAIN)["g_ema"])
    for key in list(sd):
        if key.startswith(("to_rgb1.", "to_rgbs.")) and key.endswith(("conv.weight", "bias")) \
                and "modulation" not in key:
            value = sd[key]
            sd[key] = value.repeat_interleave(4, dim=1 if key.endswith("conv.weight") else 1)
    ll, lh, hl, hh = _haar()
    for prefix in ["iwt."] + [f"to_rgbs.{k}.iwt." for k in range(3)] + [f"to_rgbs.{k}.dwt." for k in range(3)]:
        sd.update({prefix + "ll": ll, prefix + "lh": lh, prefix + "hl": hl, prefix + "hh": hh})
    return sd


def test_swagan_checkpoint_is_named_as_such(tmp_path, capsys):
    torch.save({"g_ema": _swagan_state_dict()}, tmp_path / "swagan.pt")
    with pytest.raises(stylemix.UnsupportedModelError, match="SWAGAN") as info:
        stylemix.load_generator(tmp_path / "swagan.pt")
    assert "iwt.ll" not in str(info.value).split("(")[0] and "--arch stylegan2" in str(info.value)
    rc, _, err = run(capsys, "info", tmp_path / "swagan.pt")
    assert rc == 1 and "SWAGAN" in err and len(err.strip().splitlines()) == 1


def test_swagan_training_checkpoint_is_told_by_its_args_too(tmp_path):
    ckpt = rosinality.read_checkpoint(ROS_TRAIN)
    ckpt["args"] = argparse.Namespace(**{**vars(ckpt["args"]), "arch": "swagan"})
    torch.save(ckpt, tmp_path / "sw.pt")
    with pytest.raises(stylemix.UnsupportedModelError, match="SWAGAN"):
        stylemix.load_generator(tmp_path / "sw.pt")


# ---------------------------------------------------------------------------------------------
# rosinality .pt exports: only what its Generator can build, and the call that builds it

def _config(**overrides):
    base = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024)
    return GeneratorConfig(**{**base, **overrides})


@pytest.mark.parametrize("overrides,expected", [
    (dict(), dict(size=1024, style_dim=512, n_mlp=8, channel_multiplier=2)),          # config-f
    (dict(img_resolution=256, channel_base=16384), dict(size=256, style_dim=512, n_mlp=8, channel_multiplier=1)),
    (dict(img_resolution=32, mapping_layers=2, z_dim=64, w_dim=64), dict(size=32, style_dim=64, n_mlp=2, channel_multiplier=2)),
])
def test_generator_args_for_what_rosinality_builds(overrides, expected):
    assert rosinality.generator_args(_config(**overrides)) == expected


@pytest.mark.parametrize("overrides,needle", [
    (dict(img_resolution=256, channel_base=4096, channel_max=128), "channels 4:128"),
    (dict(mapping_lr_multiplier=0.1), "lr multiplier 0.1"),
    (dict(z_dim=256), "z_dim 256"),
    (dict(architecture="resnet"), "architecture 'resnet'"),
    (dict(init_res=(4, 8)), "non-square"),
])
def test_generator_args_refuse_what_rosinality_cannot_build(overrides, needle):
    with pytest.raises(stylemix.ExportError, match=needle) as info:
        rosinality.generator_args(_config(**overrides))
    assert len(str(info.value).splitlines()) == 1


def test_pt_of_a_small_channel_network_is_refused_unless_asked(tmp_path, capsys, nv_pair):
    rc, _, err = run(capsys, "blend", NV_BASE, FIXTURES / "nvidia" / "skip64_transfer.pkl", "--swap", "16",
                     "-o", tmp_path / "b.pt")
    assert rc == 1 and "channel_multiplier" in err and "--custom-channels" in err
    assert not (tmp_path / "b.pt").exists()
    rc, out, _ = run(capsys, "blend", NV_BASE, FIXTURES / "nvidia" / "skip64_transfer.pkl", "--swap", "16",
                     "-o", tmp_path / "b.pt", "--custom-channels")
    assert rc == 0 and "self.channels set to {4: 128, 8: 128, 16: 128, 32: 64, 64: 32}" in out
    rc, out, _ = run(capsys, "info", tmp_path / "b.pt")
    assert "written by stylemix for rosinality's Generator(64, 64, 8) with its self.channels" in out


def test_pt_rosinality_can_build_records_and_prints_its_generator_call(tmp_path, capsys):
    G = random_generator(z_dim=16, w_dim=16, img_resolution=8, mapping_layers=2,
                         channel_base=8192, channel_max=512, conv_clamp=None)
    args = stylemix.save(G, tmp_path / "g.pt")
    assert args == dict(size=8, style_dim=16, n_mlp=2, channel_multiplier=2)
    ckpt = torch.load(tmp_path / "g.pt", weights_only=True)
    assert json.loads(ckpt[rosinality.ARGS_KEY]) == args
    assert ckpt["g_ema"]["convs.0.conv.weight"].shape == (1, 512, 512, 3, 3)  # as Generator(8, 16, 2) has
    z = torch.randn(2, 16)
    assert torch.equal(render(stylemix.load_generator(tmp_path / "g.pt"), z), render(G, z))
    rc, out, _ = run(capsys, "info", tmp_path / "g.pt")
    assert "rosinality .pt loads as Generator(8, 16, 2, channel_multiplier=2)" in out


def test_app_greys_out_pt_export_where_rosinality_cannot_build_the_pair(nv_pair):
    from stylemix.ui.blend_tab import pt_button
    assert pt_button(nv_pair[0]) == {"value": "export .pt: rosinality's Generator cannot build this network",
                                     "interactive": False}
    G = random_generator(z_dim=16, w_dim=16, img_resolution=8, mapping_layers=2,
                         channel_base=8192, channel_max=512, conv_clamp=None)
    assert pt_button(G)["interactive"] is True


# ---------------------------------------------------------------------------------------------
# TensorFlow pickles of the non-square forks

def _wide(**overrides):
    kwargs = dict(z_dim=32, w_dim=32, c_dim=0, img_resolution=16, channel_base=64, channel_max=32,
                  mapping_layers=3, init_res=(4, 8))
    kwargs.update(overrides)
    return random_generator(seed=11, **kwargs)


# What each fork stores: eps696/stylegan2's init_res (and size equal to the natural one), and
# min_h/min_w with res_log2 and no resolution.
NON_SQUARE = {
    "init_res": dict(init_res=(4, 8), stored=dict(num_channels=3, resolution=16, latent_size=32,
                                                   dlatent_size=32, mapping_layers=3, fmap_base=32,
                                                   fmap_max=32, init_res=[4, 8], size=[16, 32],
                                                   scale_type="pad", impl="ref")),
    "min_h/min_w": dict(init_res=(5, 3), stored=dict(num_channels=3, res_log2=4, latent_size=32,
                                                      dlatent_size=32, mapping_layers=3, fmap_base=32,
                                                      fmap_max=32, min_h=5, min_w=3)),
}


@pytest.mark.parametrize("fork", sorted(NON_SQUARE))
def test_non_square_tf_fork_loads_renders_blends_and_saves(tmp_path, fork):
    init_res, stored = NON_SQUARE[fork]["init_res"], NON_SQUARE[fork]["stored"]
    G = _wide(init_res=init_res)
    path = tmp_path / "wide.pkl"
    path.write_bytes(tf_pickle(G, stored, protocol=4))
    R = stylemix.load_generator(path)
    assert R.config.init_res == init_res and R.img_resolution == 16
    assert all(torch.equal(R.state_dict()[k], v) for k, v in G.state_dict().items())
    z = torch.randn(2, 32)
    img = render(R, z)
    assert img.shape == (2, 3, 16 * init_res[0] // 4, 16 * init_res[1] // 4)
    assert torch.equal(img, render(G, z))
    # Noise maps are in their places: changing one map changes the image.
    moved = copy.deepcopy(R)
    with torch.no_grad():
        moved.synthesis.b16.conv1.noise_strength.fill_(1.0)
        before = render(moved, z)
        moved.synthesis.b16.conv1.noise_const.mul_(-1)
    assert not torch.equal(render(moved, z), before)
    # A fine-tuned copy blends with it, and the blend goes back into the TF pickle and to safetensors.
    T = copy.deepcopy(R)
    with torch.no_grad():
        for p in T.synthesis.parameters():
            p.add_(0.1 * torch.randn_like(p))
    B = stylemix.blend(R, T, stylemix.BlendSpec.swap(8))
    expected = render(B, z)
    for name in ("blend.pkl", "blend.safetensors"):
        stylemix.save(B, tmp_path / name)
        again = stylemix.load_generator(tmp_path / name)
        assert again.config.init_res == init_res
        assert torch.equal(render(again, z), expected)
    with pytest.raises(stylemix.ExportError, match="non-square"):
        stylemix.save(B, tmp_path / "blend.pt")


def test_non_square_output_fitted_to_another_size_is_refused_in_one_line(tmp_path):
    G = _wide()
    stored = dict(NON_SQUARE["init_res"]["stored"], size=[20, 30], scale_type="fit")
    path = tmp_path / "fit.pkl"
    path.write_bytes(tf_pickle(G, stored))
    with pytest.raises(stylemix.UnsupportedModelError, match=r"fits its output to \[20, 30\]"):
        stylemix.load_generator(path)


def test_non_square_start_size_that_disagrees_with_the_constant_is_an_error(tmp_path):
    G = _wide()
    stored = dict(NON_SQUARE["init_res"]["stored"], init_res=[4, 4], size=None)
    path = tmp_path / "bad.pkl"
    path.write_bytes(tf_pickle(G, stored))
    with pytest.raises(stylemix.ModelLoadError, match="start size"):
        stylemix.load_generator(path)


def test_cli_generate_and_info_on_a_non_square_file(tmp_path, capsys):
    G = _wide()
    path = tmp_path / "wide.pkl"
    path.write_bytes(tf_pickle(G, NON_SQUARE["init_res"]["stored"]))
    rc, out, _ = run(capsys, "info", path)
    assert rc == 0 and "image          32x16 (width x height, non-square)" in out
    rc, out, _ = run(capsys, "generate", path, "--seeds", "0-1", "-o", tmp_path / "out")
    assert rc == 0
    from PIL import Image
    assert Image.open(tmp_path / "out" / "seed0000.png").size == (512, 256)  # width, height
