"""The paired fine-tune: G learns to draw each stylised image at its latent, where it is told to."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import stylemix
from conftest import random_generator
from stylemix.cli import main as cli
from stylemix.encoder import encoder_for, generator_fingerprint, save_encoder
from stylemix.formats import native
from stylemix.train import ImageFolder, TrainingLoop
from stylemix.train.paired import (PairedConfig, PairedObjective, invert_pairs, latent_layers,
                                   read_paired_checkpoint)


@pytest.fixture(scope="module")
def base():
    return random_generator(5, img_resolution=32)


def _style_folder(path, count=6, size=32, seed=0):
    """Flat-coloured discs on a flat background: a 'domain' a random generator does not draw."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        img = np.empty((size, size, 3), np.uint8)
        img[:] = rng.integers(0, 256, 3)
        disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
        img[disc] = rng.integers(0, 256, 3)
        Image.fromarray(img).save(path / f"{i}.png")
    return path


def _objective(base, folder, **overrides):
    data = ImageFolder(folder, 32)
    E = encoder_for(base, width=8, samples=500)
    settings = dict(batch=4, kimg=1.0, log_every=1000, snapshot_kimg=1000)
    settings.update(overrides)
    G = random_generator(5, img_resolution=32).train()
    return PairedObjective(G, data, invert_pairs(E, data.images), PairedConfig(**settings),
                           latents_flipped=invert_pairs(E, data.images.flip(-1)))


def _pair_error(obj) -> float:
    with torch.no_grad():
        images = obj.G.synthesis(obj.latents, noise_mode="const")
    return (images - obj.data.images.float().div(127.5).sub(1)).abs().mean().item()


def test_latent_layers_follow_the_blocks_w_plus_layout(base):
    # 32 px: b4 takes w0, b8 w1-2, b16 w3-4, b32 w5-6 (+ toRGB w7)
    assert [latent_layers(base, r) for r in (4, 8, 16, 32)] == [0, 1, 3, 5]
    with pytest.raises(stylemix.StylemixError, match="12 px is not one of"):
        latent_layers(base, 12)


def test_training_draws_the_images_at_their_latents_and_moves_only_the_free_blocks(base, tmp_path):
    obj = _objective(base, _style_folder(tmp_path / "style"), freeze_g_above=16, mix_from=32)
    start = {k: v.clone() for k, v in obj.G.named_parameters()}
    loop = TrainingLoop(obj, tmp_path / "run", log=lambda line: None)
    before = _pair_error(obj)
    for _ in range(40):
        loop.step()
    assert _pair_error(obj) < 0.6 * before
    moved = {k for k, v in obj.G.named_parameters() if not torch.equal(v, start[k])}
    assert moved and all(k.startswith(("synthesis.b4.", "synthesis.b8.", "synthesis.b16.")) for k in moved)
    assert not any(k.endswith("noise_strength") for k in moved)   # and the mapping never trains


def test_mixing_makes_the_style_hold_whatever_the_mixed_layers_say(base, tmp_path):
    folder = _style_folder(tmp_path / "style")
    errors = {}
    for mixing in (0.0, 1.0):
        obj = _objective(base, folder, mixing=mixing, mix_from=16, xflip=False)
        loop = TrainingLoop(obj, tmp_path / f"run{mixing}", log=lambda line: None)
        for _ in range(40):
            loop.step()
        # Draw each image with its 16 px and higher latents replaced by another image's.
        ws = obj.latents.clone()
        first = latent_layers(obj.G, 16)
        ws[:, first:] = obj.latents.roll(1, 0)[:, first:]
        with torch.no_grad():
            images = obj.G.synthesis(ws, noise_mode="const")
        errors[mixing] = (images - obj.data.images.float().div(127.5).sub(1)).abs().mean().item()
    assert errors[1.0] < errors[0.0]


def test_bad_settings_are_named(base, tmp_path):
    folder = _style_folder(tmp_path / "style")
    with pytest.raises(stylemix.StylemixError, match="--mix-from 12 is not one of"):
        _objective(base, folder, mix_from=12)
    with pytest.raises(stylemix.StylemixError, match="leaves no synthesis block"):
        _objective(base, folder, freeze_g_above=8, freeze_g_upto=8)
    with pytest.raises(stylemix.StylemixError, match="--region-weight -1 is not a weight"):
        _objective(base, folder, learn_region="eyes", region_weight=-1.0)
    with pytest.raises(stylemix.StylemixError, match="--keep-faces needs --learn-region"):
        _objective(base, folder, keep_faces=0.5)
    with pytest.raises(stylemix.StylemixError, match="--keep-faces 2 is not a share"):
        _objective(base, folder, learn_region="eyes", keep_faces=2.0)
    data = ImageFolder(folder, 32)
    with pytest.raises(stylemix.StylemixError, match="the folder changed since the pairs were made"):
        PairedObjective(random_generator(5, img_resolution=32), data, torch.zeros(2, base.num_ws, base.w_dim),
                        PairedConfig(xflip=False))


def test_cli_two_phases_then_resume_and_blend(base, tmp_path, capsys):
    folder = _style_folder(tmp_path / "style")
    native.save(base, tmp_path / "base.safetensors")
    E = encoder_for(base, width=8, samples=500)
    save_encoder(E, tmp_path / "enc.safetensors", generator_fingerprint(base), "base.safetensors")
    one, two = tmp_path / "phase1", tmp_path / "phase2"
    common = ["--batch", "4", "--snapshot-kimg", "1"]
    assert cli(["finetune-paired", str(tmp_path / "base.safetensors"), str(folder), "--freeze-g-above", "16",
                "--kimg", "0.008", *common, "-o", str(one)]) == 1
    assert "needs --encoder" in capsys.readouterr().err
    assert cli(["finetune-paired", str(tmp_path / "base.safetensors"), str(folder), "--encoder",
                str(tmp_path / "enc.safetensors"), "--freeze-g-above", "16", "--kimg", "0.008", *common,
                "-o", str(one)]) == 0
    assert "inverted 6 images" in capsys.readouterr().out
    assert cli(["finetune-paired", str(one), str(folder), "--freeze-g-upto", "16", "--kimg", "0.008",
                *common, "-o", str(two)]) == 0
    assert "starting from" in capsys.readouterr().out
    p1, p2 = (stylemix.load_generator(d / "generator.safetensors") for d in (one, two))
    p2_weights = dict(p2.synthesis.named_parameters())
    for name, tensor in p1.synthesis.named_parameters():   # phase 2 left phase 1's low blocks
        if not name.endswith("noise_strength"):            # (kept in both phases)
            same = torch.equal(tensor, p2_weights[name])
            assert same == name.startswith(("b4.", "b8.", "b16.")), name
    assert torch.equal(read_paired_checkpoint(one)["pair_latents"], read_paired_checkpoint(two)["pair_latents"])
    assert cli(["finetune-paired", str(one), str(folder), "--kimg", "0.012", *common, "-o", str(two)]) == 0
    assert "resuming" in capsys.readouterr().out and read_paired_checkpoint(two)["nimg"] == 12
    # The finished run given again (a rerun chain script; --pairs-from too): nothing trained or
    # written, and said so rather than "wrote".
    before = (two / "generator.safetensors").stat().st_mtime_ns
    assert cli(["finetune-paired", str(one), str(folder), "--kimg", "0.008", "--pairs-from", str(one),
                *common, "-o", str(two)]) == 0
    printed = capsys.readouterr()
    assert f"{two} is already at 0.012 kimg (--kimg 0.008): nothing to train" in printed.out
    assert "wrote" not in printed.out and "--pairs-from is not used" in printed.err
    assert (two / "generator.safetensors").stat().st_mtime_ns == before
    stylemix.check_compatible(base, stylemix.load_generator(two / "generator.safetensors"))
    # Other images in the same number: refused, not paired with the wrong latents.
    others = _style_folder(tmp_path / "other_style", seed=9)
    assert cli(["finetune-paired", str(one), str(others), "-o", str(tmp_path / "wrong")]) == 1
    assert "does not hold the images this run's pairs were made from" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert cli(["finetune-paired", str(one), str(folder), "-o", str(tmp_path / "afile")]) == 1
    assert "is a file" in capsys.readouterr().err and not (tmp_path / "wrong").exists()
    other = random_generator(6, img_resolution=32)
    native.save(other, tmp_path / "other.safetensors")
    assert cli(["finetune-paired", str(tmp_path / "other.safetensors"), str(folder), "--encoder",
                str(tmp_path / "enc.safetensors"), "-o", str(tmp_path / "x")]) == 1
    assert "another base" in capsys.readouterr().err


def test_a_grey_structure_phase_leaves_the_colour_to_the_start_model(base, tmp_path):
    from stylemix.train.keep import chroma_layout, mean_colour
    folder = _style_folder(tmp_path / "style")
    drift, grey_change = {}, {}
    for kind, settings in (("plain", {}), ("grey", dict(grey_pairs=True, keep_colour=10.0))):
        obj = _objective(base, folder, mix_from=16, **settings)
        start = random_generator(5, img_resolution=32)
        loop = TrainingLoop(obj, tmp_path / kind, log=lambda line: None)
        for _ in range(40):
            loop.step()
        ws = obj.latents
        with torch.no_grad():
            now, before = obj.G.synthesis(ws), start.synthesis(ws)
        drift[kind] = ((mean_colour(now) - mean_colour(before)).abs().mean()
                       + (chroma_layout(now) - chroma_layout(before)).abs().mean()).item()
        grey_change[kind] = (now.mean(1) - before.mean(1)).abs().mean().item()
    assert drift["grey"] < 0.5 * drift["plain"]
    assert grey_change["grey"] > 0.02           # it still learnt: light and dark moved


def test_the_swap_image_is_the_blend_of_the_start_model_and_g(base, tmp_path):
    obj = _objective(base, _style_folder(tmp_path / "style"), grey_pairs=True, keep_colour=10.0,
                     keep_colour_swaps=(8,))
    loop = TrainingLoop(obj, tmp_path / "run", log=lambda line: None)
    for _ in range(3):
        loop.step()
    swapped = stylemix.blend(obj.reference, obj.G, stylemix.BlendSpec.swap(8))
    with torch.no_grad():
        ours = obj._swap_with_reference(obj.latents, 8)
        theirs = swapped.synthesis(obj.latents, noise_mode="const")
        whole = obj.G.synthesis(obj.latents, noise_mode="const")
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert not torch.allclose(ours, whole, atol=1e-3)     # G's blocks above 8 px did move


def test_a_swaps_colour_term_is_logged_and_checked(base, tmp_path):
    folder = _style_folder(tmp_path / "style")
    obj = _objective(base, folder, grey_pairs=True, keep_colour=10.0, keep_colour_swaps=(8, 16))
    stats = TrainingLoop(obj, tmp_path / "run", log=lambda line: None).step()
    assert stats["keep_colour_swap8"] > 0 and stats["keep_colour_swap16"] > 0, stats
    assert "and the swap at 8 px's and the swap at 16 px's" in obj.describe()
    with pytest.raises(stylemix.StylemixError, match="--keep-colour-swap 12 is not one of"):
        _objective(base, folder, keep_colour=1.0, keep_colour_swaps=(12,))
    with pytest.raises(stylemix.StylemixError, match="needs --keep-colour"):
        _objective(base, folder, keep_colour_swaps=(8,))


def test_a_finer_chroma_grid_is_checked_and_described(base, tmp_path):
    folder = _style_folder(tmp_path / "style")
    obj = _objective(base, folder, grey_pairs=True, keep_colour=10.0, chroma_grid=16)
    stats = TrainingLoop(obj, tmp_path / "run", log=lambda line: None).step()
    assert stats["keep_colour"] >= 0 and "keep colour 10 on a 16×16 chroma grid" in obj.describe()
    with pytest.raises(stylemix.StylemixError, match="--keep-chroma-grid 64 is not a grid of 1 to 32"):
        _objective(base, folder, keep_colour=1.0, chroma_grid=64)
    with pytest.raises(stylemix.StylemixError, match="--keep-chroma-grid needs --keep-colour"):
        _objective(base, folder, chroma_grid=16)


def test_pairs_from_a_run_serve_a_model_that_is_not_the_base(base, tmp_path, capsys):
    """A paired phase after an adversarial one: the model is not the encoder's base, so its
    pairs come from an earlier paired run of the same images."""
    folder = _style_folder(tmp_path / "style")
    native.save(base, tmp_path / "base.safetensors")
    E = encoder_for(base, width=8, samples=500)
    save_encoder(E, tmp_path / "enc.safetensors", generator_fingerprint(base), "base.safetensors")
    common = ["--batch", "4", "--snapshot-kimg", "1", "--kimg", "0.008"]
    one = tmp_path / "phase1"
    assert cli(["finetune-paired", str(tmp_path / "base.safetensors"), str(folder), "--encoder",
                str(tmp_path / "enc.safetensors"), *common, "-o", str(one)]) == 0
    adversarial = random_generator(7, img_resolution=32)   # stands in for a finetune output
    native.save(adversarial, tmp_path / "adv.safetensors")
    later = tmp_path / "phase3"
    assert cli(["finetune-paired", str(tmp_path / "adv.safetensors"), str(folder), "--pairs-from", str(one),
                "--freeze-g-upto", "16", *common, "-o", str(later)]) == 0
    assert "with " + str(one) + "'s pairs" in capsys.readouterr().out
    ckpt = read_paired_checkpoint(later)
    assert torch.equal(ckpt["pair_latents"], read_paired_checkpoint(one)["pair_latents"])
    trained = stylemix.load_generator(later / "generator.safetensors")
    low = {n: t for n, t in adversarial.synthesis.named_parameters() if n.startswith(("b4.", "b8.", "b16."))}
    for name, tensor in trained.synthesis.named_parameters():   # started from adv, not from phase 1
        if name in low and not name.endswith("noise_strength"):
            assert torch.equal(tensor, low[name]), name
    others = _style_folder(tmp_path / "other_style", seed=9)
    assert cli(["finetune-paired", str(tmp_path / "adv.safetensors"), str(others), "--pairs-from", str(one),
                *common, "-o", str(tmp_path / "wrong")]) == 1
    assert "does not hold the images this run's pairs were made from" in capsys.readouterr().err
    assert cli(["finetune-paired", str(tmp_path / "adv.safetensors"), str(folder), "--pairs-from",
                str(tmp_path / "style"), *common, "-o", str(tmp_path / "wrong2")]) == 1
    assert "not a finetune-paired output folder" in capsys.readouterr().err
    assert cli(["finetune-paired", str(one), str(folder), "--pairs-from", str(one), *common,
                "-o", str(tmp_path / "wrong3")]) == 1
    assert "has its own" in capsys.readouterr().err


def test_preset_regions_cover_the_eyes_or_all_but_the_mouth_of_an_aligned_face():
    from stylemix.train.region import region_mask
    eyes, no_mouth = region_mask("eyes", 128)[0, 0], region_mask("no-mouth", 128)[0, 0]
    for mask in (eyes, no_mouth):
        assert mask.shape == (128, 128) and mask.max() == 1 and mask.min() == 0
        assert torch.allclose(mask, mask.flip(-1), atol=1e-6)   # symmetric: mirrored faces alike
    assert eyes[60, 48] == 1 and eyes[60, 79] == 1               # both eyes (x 0.38, 0.62; y 0.47)
    assert eyes[96, 64] == 0 and eyes[80, 64] == 0               # the mouth and the nose tip
    assert no_mouth[96, 64] == 0 and no_mouth[96, 54] == 0       # the mouth (x 0.39-0.61, y 0.71-0.79)
    assert no_mouth[60, 48] == 1 and no_mouth[10, 64] == 1 and no_mouth[120, 10] == 1


def test_random_faces_kept_outside_the_region_stay_nearer_the_start_model(base, tmp_path):
    folder = _style_folder(tmp_path / "style")
    mask = np.zeros((32, 32), np.uint8)
    mask[:, :16] = 255
    Image.fromarray(mask).save(tmp_path / "left.png")
    z = torch.randn(16, base.z_dim, generator=torch.Generator().manual_seed(3))
    drift = {}
    for share in (0.0, 0.5):
        obj = _objective(base, folder, learn_region=str(tmp_path / "left.png"), keep_faces=share,
                         xflip=False, mixing=0.0)
        with torch.no_grad():
            ws = obj.G.mapping(z)
            start = obj.G.synthesis(ws, noise_mode="const")
        loop = TrainingLoop(obj, tmp_path / f"run{share}", log=lambda line: None)
        for _ in range(40):
            loop.step()
        with torch.no_grad():
            now = obj.G.synthesis(ws, noise_mode="const")
        drift[share] = (now - start)[..., 18:].abs().mean().item()   # the kept right half
    assert drift[0.5] < 0.8 * drift[0.0], drift


def test_learning_in_a_region_keeps_the_start_models_drawing_outside_it(base, tmp_path):
    folder = _style_folder(tmp_path / "style")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 2:14] = 255                                     # learn a patch on the left only (14 %)
    Image.fromarray(mask).save(tmp_path / "left.png")
    left = (slice(None), slice(None), slice(9, 19), slice(3, 13))
    right = (slice(None), slice(None), slice(None), slice(18, 30))
    errors = {}
    for weight in (0.0, 4.0):
        obj = _objective(base, folder, learn_region=str(tmp_path / "left.png"), region_weight=weight,
                         xflip=False, mixing=0.0)
        with torch.no_grad():
            start = obj.G.synthesis(obj.latents, noise_mode="const")
        loop = TrainingLoop(obj, tmp_path / f"run{weight}", log=lambda line: None)
        for _ in range(40):
            stats = loop.step()
        with torch.no_grad():
            now = obj.G.synthesis(obj.latents, noise_mode="const")
        target = obj.data.images.float().div(127.5).sub(1)
        # the left half moved toward the images; the right half stayed nearer its own start than the images
        assert (now - target)[left].abs().mean() < 0.7 * (start - target)[left].abs().mean()
        assert (now - start)[right].abs().mean() < 0.5 * (now - target)[right].abs().mean()
        errors[weight] = (now - target)[left].abs().mean().item()
    assert errors[4.0] < errors[0.0]   # the region's own term makes it learnt faster


def test_a_bad_learn_region_is_named_before_any_work(base, tmp_path, capsys):
    from stylemix.train.region import region_mask
    with pytest.raises(stylemix.StylemixError, match="neither a preset"):
        region_mask(str(tmp_path / "nope.png"), 32)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(stylemix.StylemixError, match="not a readable image"):
        region_mask(str(tmp_path / "junk.png"), 32)
    Image.new("L", (8, 8), 0).save(tmp_path / "black.png")
    with pytest.raises(stylemix.StylemixError, match="black everywhere"):
        region_mask(str(tmp_path / "black.png"), 32)
    native.save(base, tmp_path / "base.safetensors")
    E = encoder_for(base, width=8, samples=200)
    save_encoder(E, tmp_path / "enc.safetensors", generator_fingerprint(base))
    folder = _style_folder(tmp_path / "style")
    assert cli(["finetune-paired", str(tmp_path / "base.safetensors"), str(folder), "--encoder",
                str(tmp_path / "enc.safetensors"), "--learn-region", str(tmp_path / "junk.png"),
                "-o", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "--learn-region" in err and "not a readable image" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_grey_pairs_can_be_switched_off_when_a_grey_run_is_resumed():
    """--grey-pairs / --no-grey-pairs / neither: on, off, the checkpoint's setting (a resumed
    grey run takes colour again with --no-grey-pairs)."""
    import dataclasses
    from stylemix.cli import build_parser
    from stylemix.cli.training import paired_changes
    from stylemix.train.paired import PairedConfig, config_with
    parser = build_parser()
    grey_run = {"paired_config": dataclasses.asdict(PairedConfig(grey_pairs=True, keep_colour=30.0))}
    seen = {}
    for flags in ([], ["--grey-pairs"], ["--no-grey-pairs"]):
        args = parser.parse_args(["finetune-paired", "base.safetensors", "style", *flags, "-o", "run"])
        seen[" ".join(flags)] = config_with(paired_changes(args), grey_run).grey_pairs
    assert seen == {"": True, "--grey-pairs": True, "--no-grey-pairs": False}
