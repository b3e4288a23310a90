"""The trainer at tiny scale: augmentation, data loading, adversarial steps,
checkpoints that resume, fine-tuning through the CLI, and the data builders' pure parts."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stylemix
from stylemix.cli import main as cli
from stylemix.networks import Generator
from stylemix.networks.discriminator import Discriminator
from stylemix.train import (DatasetError, GanObjective, ImageFolder, TrainConfig, TrainingLoop,
                            diff_augment, matching_discriminator_config, networks_from_checkpoint,
                            parse_policy, read_trainer_checkpoint, small_generator_config)

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image_folder(path: Path, count: int = 8, size: int = 16, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path / f"{i:03d}.png")
    return path


def _tiny_trainer(tmp_path, data, **overrides) -> TrainingLoop:
    cfg = small_generator_config(16, z_dim=8, channel_base=64, channel_max=8, mapping_layers=1)
    G, D = Generator(cfg), Discriminator(matching_discriminator_config(cfg))
    settings = dict(batch=4, kimg=0.016, snapshot_kimg=1000, augment="translation", log_every=1)
    settings.update(overrides)
    return TrainingLoop(GanObjective(G, D, data, TrainConfig(**settings)), tmp_path / "run",
                        log=lambda line: None)


# --- augmentation ----------------------------------------------------------------------------
def test_augment_keeps_shape_and_passes_gradients():
    x = torch.randn(6, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, parse_policy("color,translation,cutout"))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_moves_content_and_fills_with_zeros():
    torch.manual_seed(3)
    x = torch.ones(64, 3, 16, 16)
    y = diff_augment(x, ("translation",))
    shifted = (y == 0).flatten(1).any(1)
    assert shifted.any(), "no image was shifted"
    assert set(y.unique().tolist()) <= {0.0, 1.0}


def test_cutout_zeroes_a_quarter_of_each_image():
    y = diff_augment(torch.ones(32, 3, 16, 16), ("cutout",))
    zero_fraction = (y == 0).float().mean(dim=[1, 2, 3])
    assert ((zero_fraction > 0.1) & (zero_fraction <= 0.35)).all()


def test_unknown_policy_is_named():
    with pytest.raises(ValueError, match="blur"):
        parse_policy("color,blur")


# --- data ----------------------------------------------------------------------------------
def test_image_folder_crops_resizes_and_skips_non_images(tmp_path):
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "wide.jpg")
    rgba = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    rgba.save(tmp_path / "clear.png")
    (tmp_path / "notes.png").write_bytes(b"not an image at all")
    data = ImageFolder(tmp_path, 8)
    assert data.images.shape == (2, 3, 8, 8) and data.images.dtype == torch.uint8
    assert [name for name, _ in data.skipped] == ["notes.png"]
    assert (data.images[0] == 255).all()           # transparent → white background
    assert data.images[1, 0].float().mean() > 200  # red stays red after the centre crop


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        ImageFolder(tmp_path / "missing", 16)
    with pytest.raises(DatasetError, match="holds no images"):
        ImageFolder(tmp_path, 16)
    (tmp_path / "a.png").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="none of the 1 files"):
        ImageFolder(tmp_path, 16)


# --- training --------------------------------------------------------------------------------
def test_adversarial_step_updates_both_networks_and_ema(tmp_path):
    data = ImageFolder(_image_folder(tmp_path / "d"), 16)
    trainer = _tiny_trainer(tmp_path, data)
    gan = trainer.objective
    g0 = [p.clone() for p in gan.G.parameters()]
    d0 = [p.clone() for p in gan.D.parameters()]
    stats = trainer.step()  # step 0 also runs R1
    assert {"G_loss", "D_loss", "R1"} <= set(stats) and all(np.isfinite(list(stats.values())))
    assert any(not torch.equal(a, b) for a, b in zip(g0, gan.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, gan.D.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(gan.G_ema.parameters(), gan.G.parameters()))
    assert "R1" not in trainer.step()  # lazy: only every r1_interval steps


def test_checkpoint_resumes_where_it_stopped(tmp_path):
    data = ImageFolder(_image_folder(tmp_path / "d"), 16)
    trainer = _tiny_trainer(tmp_path, data, kimg=0.012)
    trainer.run()
    ckpt = read_trainer_checkpoint(tmp_path / "run")
    assert ckpt is not None and ckpt["nimg"] == 12
    G, D, G_ema = networks_from_checkpoint(ckpt)
    assert torch.equal(G_ema.synthesis.b16.torgb.weight, trainer.objective.G_ema.synthesis.b16.torgb.weight)
    resumed = TrainingLoop(GanObjective(G, D, data, TrainConfig(batch=4, kimg=0.02, augment="translation"),
                                        G_ema=G_ema), tmp_path / "run", log=lambda line: None)
    resumed.load_state(ckpt)
    assert resumed.state.nimg == 12 and resumed.state.step == 3
    resumed.run()
    assert resumed.state.nimg == 20
    shipped = stylemix.load_generator(tmp_path / "run" / "generator.safetensors")
    assert torch.equal(shipped.synthesis.b16.torgb.weight, resumed.objective.G_ema.synthesis.b16.torgb.weight)
    assert (tmp_path / "run" / "samples.png").is_file()


def test_trainer_rejects_mismatched_data(tmp_path):
    data = ImageFolder(_image_folder(tmp_path / "d", size=32), 32)
    with pytest.raises(stylemix.StylemixError, match="32 px"):
        _tiny_trainer(tmp_path, data)


def test_a_hostile_checkpoint_is_not_taken_for_a_trainer_checkpoint(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("ran",))
    bad = tmp_path / "checkpoint.pt"
    torch.save({"format": "stylemix-trainer", "x": Boom()}, bad)
    assert read_trainer_checkpoint(bad) is None


# --- the command line ---------------------------------------------------------------------------
def test_cli_train_then_finetune_then_blend(tmp_path, capsys):
    base_data = _image_folder(tmp_path / "faces", count=8, seed=1)
    style_data = _image_folder(tmp_path / "style", count=8, seed=2)
    base_run, ft_run = tmp_path / "base", tmp_path / "ft"
    common = ["--batch", "4", "--snapshot-kimg", "1"]
    assert cli(["train", str(base_data), "--resolution", "16", "--z-dim", "8", "--channel-base", "64",
                "--channel-max", "8", "--mapping-layers", "1", "--kimg", "0.008", *common,
                "-o", str(base_run)]) == 0
    assert cli(["finetune", str(base_run), str(style_data), "--kimg", "0.016", *common,
                "-o", str(ft_run)]) == 0
    out = capsys.readouterr().out
    assert "kimg" in out and "generator.safetensors" in out
    base = stylemix.load_generator(base_run / "generator.safetensors")
    transfer = stylemix.load_generator(ft_run / "generator.safetensors")
    stylemix.check_compatible(base, transfer)
    assert read_trainer_checkpoint(ft_run)["nimg"] == 16  # --kimg counts fine-tuning only
    # Running the same command again resumes from OUT's checkpoint instead of starting over.
    assert cli(["finetune", str(base_run), str(style_data), "--kimg", "0.02", *common,
                "-o", str(ft_run)]) == 0
    assert "resuming" in capsys.readouterr().out
    assert read_trainer_checkpoint(ft_run)["nimg"] == 20


def test_cli_finetune_from_an_nvidia_pickle_uses_its_discriminator(tmp_path, capsys):
    from conftest import NV_BASE
    G = stylemix.load_generator(NV_BASE)
    data = _image_folder(tmp_path / "style", count=4, size=G.img_resolution)
    assert cli(["finetune", str(NV_BASE), str(data), "--kimg", "0.004", "--batch", "4",
                "-o", str(tmp_path / "ft")]) == 0
    assert "no discriminator" not in capsys.readouterr().err
    tuned = stylemix.load_generator(tmp_path / "ft" / "generator.safetensors")
    stylemix.check_compatible(G, tuned)
    # One step of Adam (lr 0.0025) moves each weight by about the learning rate: the run's D and
    # G are the pickle's D and raw G moved a little, not fresh networks.
    _, D_pickle = stylemix.formats.load_generator_and_discriminator(NV_BASE)
    G_raw = stylemix.load_generator(NV_BASE, network="G")
    _, D_run, _ = networks_from_checkpoint(read_trainer_checkpoint(tmp_path / "ft"))
    ckpt_G = networks_from_checkpoint(read_trainer_checkpoint(tmp_path / "ft"))[0]
    for ours, theirs in ((D_run, D_pickle), (ckpt_G, G_raw)):
        moved = max((a - b).abs().max().item() for a, b in
                    zip(ours.state_dict().values(), theirs.state_dict().values()))
        assert 0 < moved < 0.02


def test_cli_finetune_errors_are_one_line(tmp_path, capsys):
    assert cli(["finetune", str(tmp_path / "nope.pkl"), str(tmp_path), "-o", str(tmp_path / "o")]) == 1
    assert "no such model file" in capsys.readouterr().err


# --- data builders -------------------------------------------------------------------------------
def test_emoji_builder_keeps_only_head_glyphs():
    heads = _tool("build_emoji_heads")
    assert heads.is_head_glyph("1f468")
    assert heads.is_head_glyph("1f469-1f3fd-200d-1f9b1")
    assert heads.is_head_glyph("1f471-1f3fb-200d-2640-fe0f")
    assert not heads.is_head_glyph("1f468-1f3fb-200d-1f4bb")  # technologist: head and body
    assert not heads.is_head_glyph("1f46e-1f3fd")              # police officer
    assert heads.family_of("1f469-1f3fd-200d-1f9b1") == "1f469-200d-1f9b1"


def _two_eyes(left: tuple[int, int], right: tuple[int, int]) -> np.ndarray:
    """A 256 px RGBA render: a brown opaque head with two white discs for eyes."""
    yy, xx = np.mgrid[:256, :256]
    rgba = np.zeros((256, 256, 4), np.uint8)
    rgba[40:230, 40:216] = (150, 100, 70, 255)
    for cx, cy in (left, right):
        rgba[(xx - cx) ** 2 + (yy - cy) ** 2 <= 100] = (250, 250, 250, 255)
    return rgba


def test_emoji_builder_finds_eyes_and_puts_them_where_ffhq_has_them():
    heads = _tool("build_emoji_heads")
    rgba = _two_eyes((90, 130), (170, 130))
    eyes = heads.find_eyes(rgba)
    assert np.allclose([*eyes[0], *eyes[1]], [90, 130, 170, 130], atol=0.5)
    assert heads.find_eyes(_two_eyes((90, 110), (170, 150))) is None  # not level: not eyes
    left, top, right, bottom = heads.ffhq_box(np.array([90, 130, 170, 130]))
    side = right - left
    assert side == pytest.approx(80 / 0.25)
    assert (90 - left) / side == pytest.approx(0.375) and (130 - top) / side == pytest.approx(heads.EYE_Y)
    out = np.asarray(heads.compose(rgba, np.array([90, 130, 170, 130]), (200, 180, 160)))
    assert out.shape == (heads.OUT_SIZE, heads.OUT_SIZE, 3)
    assert out[0, 0].tolist() == [200, 180, 160]  # past the render: background
    n = heads.OUT_SIZE
    assert out[round(heads.EYE_Y * n), round(0.375 * n)].min() > 240  # an eye, where FFHQ has it
    # a glyph whose eyes are not found takes its family's median
    renders = {"1f468": rgba, "1f468-1f3fb": _two_eyes((90, 110), (170, 150))}
    assert np.allclose(heads.eyes_by_glyph(renders)["1f468-1f3fb"], [90, 130, 170, 130], atol=0.5)


def test_dicebear_builder_finds_a_styles_eyes_where_two_eye_variants_differ(tmp_path):
    """A style's eye centres come from where the same heads drawn with two eye variants differ;
    the crop widens around the FFHQ layout's centre; a folder without DiceBear is named."""
    dicebear = _tool("build_dicebear_heads")
    plain = _two_eyes((90, 130), (170, 130))
    other = plain.copy()
    other[120:141, 80:101] = (0, 0, 0, 255)     # another left eye, square
    other[125:136, 165:176] = (0, 0, 0, 255)    # and a smaller right one
    eyes = dicebear.eyes_where_they_differ([(plain, other)], "test")
    assert np.allclose(eyes, [90, 130, 170, 130], atol=1.5)
    with pytest.raises(SystemExit, match="both sides"):
        dicebear.eyes_where_they_differ([(plain, np.where(np.arange(256)[None, :, None] < 128, other, plain))], "test")
    wide = dicebear.widened(np.array([90.0, 130, 170, 130]), 1.2)
    assert np.allclose(wide, [82, 130, 178, 130])   # 96 px apart about the same midpoint
    heads = _tool("build_emoji_heads")
    left, top, right, bottom = heads.ffhq_box(wide)
    assert (right - left) == pytest.approx(1.2 * 80 / 0.25)
    with pytest.raises(SystemExit, match="npm install --prefix"):
        dicebear.main([str(tmp_path), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_open_smile_is_cut_from_a_smiley_and_pasted_over_the_heads_own_smile():
    """--open-smiles: a smiley's magenta-and-white mouth, crimson now, lands on the head's lips."""
    heads = _tool("build_emoji_heads")
    smiley = np.zeros((256, 256, 4), np.uint8)
    smiley[20:236, 20:236] = (250, 200, 30, 255)         # a yellow face
    smiley[150:190, 70:186] = (210, 30, 180, 255)        # the mouth's magenta inside
    smiley[150:158, 80:176] = (255, 255, 255, 255)       # top teeth
    smiley[60:90, 80:100] = (255, 255, 255, 255)         # an eye white: above the mouth, left out
    mouth = heads.cut_open_mouth(smiley)
    assert mouth.shape[:2] == (40, 116)
    inside = mouth[25, 58]
    assert inside[3] == 255 and inside[0] > 2 * inside[2]   # crimson: red well above blue
    assert mouth[4, 58, :3].min() == 255                    # the teeth stay white

    head = _two_eyes((90, 130), (170, 130))
    head[190:196, 110:150] = (190, 60, 60, 255)            # its closed smile: the lips' shade
    head[190:192, 110:150] = (200, 40, 60, 255)            # and their reddest 2 %
    eyes = np.array([90, 130, 170, 130])
    assert heads.closed_mouth_top(head, eyes) == pytest.approx(190, abs=1)
    opened = heads.with_open_smile(head, eyes, mouth)
    width = round(heads.OPEN_MOUTH_WIDTH * 80)
    changed = np.nonzero(np.abs(opened.astype(int) - head.astype(int)).sum(-1).any(0))[0]
    assert abs(changed.min() - (130 - width / 2)) <= 1 and abs(changed.max() - (130 + width / 2)) <= 1
    assert (opened[:185] == head[:185]).all()                # nothing changes above the lips
    assert opened[205, 130, 0] > 2 * opened[205, 130, 2]     # the open mouth covers the chin side
    with pytest.raises(SystemExit, match="no open mouth"):
        heads.cut_open_mouth(np.zeros((256, 256, 4), np.uint8))


def test_backdrops_from_a_model_are_its_samples_frame_colours(tmp_path):
    """--backdrops-from BASE: one colour per head, each the mean of a base sample's outer frame."""
    from stylemix.formats import native
    from stylemix.render import render_seeds, to_uint8
    heads = _tool("build_emoji_heads")
    G = Generator(small_generator_config(16, z_dim=8, channel_base=64, channel_max=8, mapping_layers=1))
    native.save(G, tmp_path / "g.safetensors")
    colours = heads.model_backdrops(tmp_path / "g.safetensors", 3)
    image = to_uint8(render_seeds(stylemix.load_generator(tmp_path / "g.safetensors"), [2], psi=1.0))[0]
    frame = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]]).astype(float)
    assert len(colours) == 3 and np.allclose(colours[2], frame.mean(axis=0), atol=0.51)
    assert len(set(colours)) == 3  # different seeds, different backdrops


def test_frozen_blocks_stay_put_and_the_rest_trains(tmp_path):
    data = ImageFolder(_image_folder(tmp_path / "d"), 16)
    trainer = _tiny_trainer(tmp_path, data, freeze_g_above=8, freeze_d=1)
    gan = trainer.objective
    g0 = {k: v.clone() for k, v in gan.G.synthesis.named_parameters()}
    d0 = {k: v.clone() for k, v in gan.D.named_parameters()}
    trainer.step()
    trainer.step()
    moved = {k for k, v in gan.G.synthesis.named_parameters() if not torch.equal(v, g0[k])}
    assert moved and all(k.startswith(("b4.", "b8.")) for k in moved)
    assert not any(k.startswith("b16.") for k in moved)
    d_moved = {k for k, v in gan.D.named_parameters() if not torch.equal(v, d0[k])}
    assert d_moved and not any(k.startswith("b16.") for k in d_moved)
    with pytest.raises(stylemix.StylemixError, match="--freeze-g-above 12 is not one of"):
        _tiny_trainer(tmp_path, data, freeze_g_above=12)


def test_freezing_the_low_blocks_leaves_them_and_trains_the_high_ones(tmp_path):
    data = ImageFolder(_image_folder(tmp_path / "d"), 16)
    trainer = _tiny_trainer(tmp_path, data, freeze_g_upto=8, freeze_mapping=True, freeze_noise=True)
    gan = trainer.objective
    g0 = {k: v.clone() for k, v in gan.G.named_parameters()}
    trainer.step()
    moved = {k for k, v in gan.G.named_parameters() if not torch.equal(v, g0[k])}
    assert moved and all(k.startswith("synthesis.b16.") for k in moved)
    assert not any(k.endswith("noise_strength") for k in moved)
    with pytest.raises(stylemix.StylemixError, match="--freeze-g-upto 5 is not one of"):
        _tiny_trainer(tmp_path, data, freeze_g_upto=5)
    with pytest.raises(stylemix.StylemixError, match="leaves no synthesis block to train"):
        _tiny_trainer(tmp_path, data, freeze_g_above=8, freeze_g_upto=8)
    with pytest.raises(stylemix.StylemixError, match="leaves no synthesis block to train"):
        _tiny_trainer(tmp_path, data, freeze_g_upto=16)


def test_keep_terms_tell_colour_from_layout():
    from stylemix.train.keep import keep_loss
    torch.manual_seed(0)
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    assert keep_loss(image, image.clone(), 1.0, 1.0)[0].item() == pytest.approx(0.0, abs=1e-8)
    tint = torch.tensor([0.2, -0.1, 0.0])
    tinted = image + tint.view(1, 3, 1, 1)                           # same layout, new colour
    _, stats = keep_loss(tinted, image, 1.0, 1.0)
    chroma = tint - tint.mean()                                      # every 8×8 cell's shift
    expected = tint.square().sum() + chroma.square().sum()
    assert stats["keep_colour"] == pytest.approx(expected.item(), rel=1e-4) and stats["keep_layout"] < 1e-6
    stained = image.clone()
    stained[:, :, 8:12, 12:16] += tint.view(1, 3, 1, 1)               # a local stain: one cell
    _, stats = keep_loss(stained, image, 1.0)
    mean_part = (tint / 64).square().sum().item()
    assert stats["keep_colour"] > 10 * mean_part
    grey = image.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    moved = torch.roll(grey, 8, dims=3)                               # light and dark moved
    _, stats = keep_loss(moved, grey, 1.0, 1.0)
    assert stats["keep_colour"] < 1e-10 and stats["keep_layout"] > 0.5
    loss, stats = keep_loss(moved, grey, layout_weight=3.0)
    assert set(stats) == {"keep_layout"} and loss.item() == pytest.approx(3 * stats["keep_layout"])


def test_a_finer_chroma_grid_holds_a_thin_colour_fringe():
    """A rim a pixel wide on either side of a line: magenta above, green below. On an 8×8 grid
    (4 px cells at 32 px) both sides share a cell and cancel; on a 32×32 grid they do not."""
    from stylemix.train.keep import keep_loss
    image = torch.zeros(1, 3, 32, 32)
    fringed = image.clone()
    magenta, green = torch.tensor([0.3, -0.3, 0.3]), torch.tensor([-0.3, 0.3, -0.3])
    fringed[:, :, 13, :] += magenta.view(1, 3, 1)
    fringed[:, :, 14, :] += green.view(1, 3, 1)
    coarse = keep_loss(fringed, image, 1.0)[1]["keep_colour"]
    fine = keep_loss(fringed, image, 1.0, chroma_size=32)[1]["keep_colour"]
    assert coarse < 1e-10 and fine > 0.01


def _drift_from_start(trainer, steps: int) -> dict[str, float]:
    from stylemix.train.keep import keep_loss
    import copy
    start = copy.deepcopy(trainer.objective.G)
    for _ in range(steps):
        trainer.step()
    ws = start.mapping(torch.randn(16, 8, generator=torch.Generator().manual_seed(5)))
    with torch.no_grad():
        return keep_loss(trainer.objective.G.synthesis(ws, noise_mode="const"),
                         start.synthesis(ws, noise_mode="const"), 1.0, 1.0)[1]


@pytest.mark.parametrize("term", ["keep_colour", "keep_layout"])
def test_a_keep_term_holds_its_part_of_the_samples_to_the_start(tmp_path, term):
    data = ImageFolder(_image_folder(tmp_path / "d"), 16)
    fast = dict(g_lr=0.02, d_lr=0.02)
    torch.manual_seed(0)
    free = _drift_from_start(_tiny_trainer(tmp_path / "free", data, **fast), 6)
    torch.manual_seed(0)
    kept_trainer = _tiny_trainer(tmp_path / "kept", data, **fast, **{term: 100.0})
    assert term in kept_trainer.step()
    kept = _drift_from_start(kept_trainer, 5)
    assert kept[term] < free[term] / 3, (kept, free)
    with pytest.raises(stylemix.StylemixError, match="is not a weight"):
        _tiny_trainer(tmp_path / "bad", data, **{term: -1.0})


def test_the_keep_reference_is_the_start_model_also_after_a_resume(tmp_path, capsys):
    base = tmp_path / "base"
    assert cli(["train", str(_image_folder(tmp_path / "faces")), "--resolution", "16", "--z-dim", "8",
                "--channel-base", "64", "--channel-max", "8", "--mapping-layers", "1",
                "--kimg", "0.008", "--batch", "4", "-o", str(base)]) == 0
    style = _image_folder(tmp_path / "style", seed=3)
    args = ["finetune", str(base), str(style), "--batch", "4", "--keep-colour", "10",
            "--freeze-g-above", "8", "-o", str(tmp_path / "tuned")]
    assert cli(args + ["--kimg", "0.008"]) == 0
    assert cli(args + ["--kimg", "0.016"]) == 0
    assert "keep colour 10" in capsys.readouterr().out
    start, tuned = read_trainer_checkpoint(base), read_trainer_checkpoint(tmp_path / "tuned")
    assert tuned["nimg"] == 16
    for name, value in start["G_ema"].items():
        assert torch.equal(tuned["G_reference"][name], value), name
    assert any(not torch.equal(tuned["G_ema"][n], v) for n, v in start["G_ema"].items())


def test_checkpoints_written_before_the_shared_loop_still_resume(tmp_path):
    """The trainer used to keep its history as a list; the loop reads both layouts."""
    data = ImageFolder(_image_folder(tmp_path / "d"), 16)
    trainer = _tiny_trainer(tmp_path, data, kimg=0.008)
    trainer.run()
    ckpt = read_trainer_checkpoint(tmp_path / "run")
    ckpt["history"] = [{"kimg": 0.004, "G_loss": 0.7}, {"kimg": 0.008, "G_loss": 0.6}]
    G, D, G_ema = networks_from_checkpoint(ckpt)
    resumed = TrainingLoop(GanObjective(G, D, data, TrainConfig(batch=4, kimg=0.012, augment="")),
                           tmp_path / "run", log=lambda line: None)
    resumed.load_state(ckpt)
    assert resumed.state.history[1]["G_loss"] == 0.6 and resumed.state.nimg == 8
    resumed.run()
    assert read_trainer_checkpoint(tmp_path / "run")["nimg"] == 12
