"""Distillation at tiny scale: pairs on disk, the student's mapping, learning, scoring,
checkpoints that resume exactly, data that grows during a run, the CLI, and the teacher
builder's pure parts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stylemix.cli import main as cli
from stylemix.errors import StylemixError
from stylemix.networks import Generator, GeneratorConfig
from stylemix.train import TrainingLoop
from stylemix.train import distill as ds
from stylemix.train.dataset import DatasetError

TOOLS = Path(__file__).resolve().parents[1] / "tools"
CHANNELS = {4: 16, 8: 16, 16: 8}


def _teacher(seed: int = 7) -> Generator:
    """A small random generator standing in for the teacher: its renders are the targets."""
    torch.manual_seed(seed)
    return Generator(GeneratorConfig(z_dim=16, c_dim=0, w_dim=16, img_resolution=16,
                                     mapping_layers=2, channels={4: 16, 8: 16, 16: 8})).eval()


def _write_pairs(folder: Path, teacher: Generator, seeds: range, chunk: int = 8, scale: int = 2) -> None:
    """chunk_*.npz files as tools/build_ffhq_teacher.py writes them (stored ``scale``× larger)."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds = list(seeds)
    for k in range(0, len(seeds), chunk):
        part = seeds[k:k + chunk]
        z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(16) for s in part])).float()
        with torch.no_grad():
            w = teacher.mapping(z)
            img = teacher.synthesis(w, noise_mode="const").clamp(-1, 1)
        img = torch.nn.functional.interpolate(img, scale_factor=scale, mode="nearest")
        np.savez(folder / f"chunk_{k // chunk:05d}.npz", seeds=np.array(part), z=z.numpy(),
                 w=w[:, 0].numpy(), img=((img + 1) * 127.5).round().to(torch.uint8).numpy())


def _mapping_of(G: Generator) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in G.state_dict().items() if k.startswith("mapping.")}


def test_pairs_load_downsample_and_grow(tmp_path):
    teacher = _teacher()
    _write_pairs(tmp_path / "train", teacher, range(16))
    pairs = ds.TeacherPairs(tmp_path / "train", 16)
    assert len(pairs) == 16 and pairs.images.shape == (16, 3, 16, 16)
    # nearest ×2 then box ÷2 gives back the teacher's pixels exactly
    with torch.no_grad():
        z = torch.from_numpy(np.random.RandomState(3).randn(1, 16)).float()
        ref = teacher(z).clamp(-1, 1)
    assert torch.equal(pairs.images[3], ((ref[0] + 1) * 127.5).round().to(torch.uint8))
    _write_pairs(tmp_path / "more", teacher, range(16, 24))
    (tmp_path / "more" / "chunk_00000.npz").rename(tmp_path / "train" / "chunk_00002.npz")
    assert pairs.refresh() == 8 and len(pairs) == 24
    assert pairs.refresh() == 0


def test_pairs_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        ds.TeacherPairs(tmp_path / "missing", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no chunk"):
        ds.TeacherPairs(tmp_path / "empty", 16)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "chunk_00000.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="chunk_00000.npz is not a teacher-pair chunk"):
        ds.TeacherPairs(tmp_path / "bad", 16)
    _write_pairs(tmp_path / "ok", _teacher(), range(8))
    with pytest.raises(DatasetError, match="does not box-downsample to 12 px"):
        ds.TeacherPairs(tmp_path / "ok", 12)
    with pytest.raises(DatasetError, match="smaller than the 64 px student"):
        ds.TeacherPairs(tmp_path / "ok", 64)


def test_student_copies_the_teacher_mapping():
    teacher = _teacher()
    student = ds.make_student(_mapping_of(teacher), 16, CHANNELS)
    z = torch.randn(4, 16)
    with torch.no_grad():
        assert torch.equal(student.mapping(z), teacher.mapping(z))
    assert student.config.mapping_layers == 2 and student.w_dim == 16
    without_avg = {k: v for k, v in _mapping_of(teacher).items() if k != "mapping.w_avg"}
    estimated = ds.make_student(without_avg, 16, CHANNELS).mapping.w_avg
    assert estimated.abs().sum() > 0  # estimated from samples when the file has none


def test_read_mapping_from_safetensors_and_errors(tmp_path):
    from safetensors.torch import save_file
    teacher = _teacher()
    save_file({k: v.contiguous() for k, v in _mapping_of(teacher).items()}, str(tmp_path / "m.safetensors"))
    got = ds.read_mapping(tmp_path / "m.safetensors")
    assert torch.equal(got["mapping.fc1.weight"], teacher.mapping.fc1.weight)
    save_file({"other": torch.zeros(2)}, str(tmp_path / "none.safetensors"))
    with pytest.raises(StylemixError, match="holds no mapping network"):
        ds.read_mapping(tmp_path / "none.safetensors")
    with pytest.raises(StylemixError, match="--channels wants RES:COUNT"):
        ds.parse_channels("4-256")


def _distiller(tmp_path, teacher, **overrides) -> TrainingLoop:
    _write_pairs(tmp_path / "pairs" / "train", teacher, range(32))
    _write_pairs(tmp_path / "pairs" / "val", teacher, range(1000, 1008))
    settings = dict(batch=4, kimg=0.2, lr=0.01, snapshot_kimg=0.1, log_every=10, val_count=8)
    settings.update(overrides)
    G = ds.make_student(_mapping_of(teacher), 16, CHANNELS, seed=1)
    objective = ds.DistillObjective(G, ds.TeacherPairs(tmp_path / "pairs" / "train", 16),
                                    ds.DistillConfig(**settings), val=ds.TeacherPairs(tmp_path / "pairs" / "val", 16))
    return TrainingLoop(objective, tmp_path / "run", log=lambda line: None)


def test_distillation_learns_and_scores_held_out_pairs(tmp_path):
    teacher = _teacher()
    d = _distiller(tmp_path, teacher).objective
    before = ds.score(d.G_ema, d.val, 8)
    TrainingLoop(d, tmp_path / "run", log=lambda line: None).run()
    after = ds.score(d.G_ema, d.val, 8)
    assert after["psnr"] > before["psnr"] + 1.0
    lines = [json.loads(line) for line in (tmp_path / "run" / ds.METRICS_NAME).read_text().splitlines()]
    assert [e["kimg"] for e in lines] == [0.1, 0.2]  # one line per snapshot, none doubled
    assert lines[-1]["val_psnr"] == pytest.approx(after["psnr"], abs=1e-3)
    assert (tmp_path / "run" / "samples.png").is_file()
    G = ds.networks_from_distill_checkpoint(ds.read_distill_checkpoint(tmp_path / "run"))[1]
    # the mapping never trains: the student keeps speaking the teacher's latent language
    assert torch.equal(G.mapping.fc0.weight, teacher.mapping.fc0.weight)


def test_resume_continues_exactly(tmp_path):
    teacher = _teacher()
    straight = _distiller(tmp_path / "a", teacher, kimg=0.16, snapshot_kimg=0.08)
    straight.run()
    first = _distiller(tmp_path / "b", teacher, kimg=0.08, snapshot_kimg=0.08)
    first.run()
    ckpt = ds.read_distill_checkpoint(tmp_path / "b" / "run")
    G, G_ema, D = ds.networks_from_distill_checkpoint(ckpt)
    assert D is None
    config = ds.config_overrides(ds.DistillConfig(**ckpt["distill_config"]), kimg=0.16)
    resumed = TrainingLoop(ds.DistillObjective(G, ds.TeacherPairs(tmp_path / "b" / "pairs" / "train", 16),
                                               config, G_ema=G_ema), tmp_path / "b" / "run", log=lambda line: None)
    resumed.load_state(ckpt)
    resumed.run()
    for a, b in zip(straight.objective.G_ema.state_dict().values(), resumed.objective.G_ema.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)


def test_adversarial_term_trains_a_discriminator(tmp_path):
    loop = _distiller(tmp_path, _teacher(), kimg=0.04, adv_weight=0.1, r1_interval=2)
    d = loop.objective
    assert d.D is not None
    before = [p.clone() for p in d.D.parameters()]
    stats = loop.step()
    assert {"G_adv", "D_loss"} <= set(stats)
    assert any(not torch.equal(a, b) for a, b in zip(before, d.D.parameters()))
    loop.run()
    G, G_ema, D = ds.networks_from_distill_checkpoint(ds.read_distill_checkpoint(tmp_path / "run"))
    assert D is not None and torch.equal(D.state_dict()["b4.out.weight"], d.D.state_dict()["b4.out.weight"])


def test_distiller_refuses_mismatched_data(tmp_path):
    teacher = _teacher()
    _write_pairs(tmp_path / "p", teacher, range(8))
    G = ds.make_student(_mapping_of(teacher), 32, {**CHANNELS, 32: 8})
    with pytest.raises(StylemixError, match="pairs are 16 px but the student makes 32 px"):
        ds.DistillObjective(G, ds.TeacherPairs(tmp_path / "p", 16), ds.DistillConfig())


def test_cli_distill_runs_and_resumes(tmp_path, capsys):
    from safetensors.torch import save_file
    teacher = _teacher()
    _write_pairs(tmp_path / "pairs" / "train", teacher, range(16))
    _write_pairs(tmp_path / "pairs" / "val", teacher, range(1000, 1004))
    save_file({k: v.contiguous() for k, v in _mapping_of(teacher).items()}, str(tmp_path / "map.safetensors"))
    out = tmp_path / "run"
    args = [str(tmp_path / "pairs"), "--resolution", "16", "--channels", "4:16,8:16,16:8",
            "--batch", "4", "--snapshot-kimg", "0.04", "-o", str(out)]
    assert cli(["distill", *args, "--kimg", "0.04"]) == 1  # no --mapping for a new run
    assert "needs --mapping FILE" in capsys.readouterr().err
    assert cli(["distill", *args, "--kimg", "0.04", "--mapping", str(tmp_path / "map.safetensors")]) == 0
    assert cli(["distill", *args, "--kimg", "0.08"]) == 0
    printed = capsys.readouterr().out
    assert f"resuming {out} at 0.04 kimg" in printed
    metrics = [json.loads(line) for line in (out / ds.METRICS_NAME).read_text().splitlines()]
    assert [m["kimg"] for m in metrics] == [0.04, 0.08] and "val_ssim" in metrics[0]
    from stylemix import load_generator
    assert load_generator(out / "generator.safetensors").img_resolution == 16


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_teacher_builder_pure_parts():
    tool = _tool("build_ffhq_teacher")
    img = np.arange(2 * 3 * 8 * 8, dtype=np.float64).reshape(2, 3, 8, 8)
    small = tool.area_downsample(img, 2)
    assert small.shape == (2, 3, 2, 2) and small[0, 0, 0, 0] == img[0, 0, :4, :4].mean()
    assert tool.to_uint8(np.array([-1.0, 0.0, 1.0, 2.0])).tolist() == [0, 128, 255, 255]
    assert tool.seeds_of("val", 2).tolist() == [1_000_000, 1_000_001]
    assert np.array_equal(tool.z_of(5), np.random.RandomState(5).randn(512).astype(np.float32))


def test_finetune_starts_from_a_distilled_folder_and_its_discriminator(tmp_path, capsys):
    from PIL import Image
    loop = _distiller(tmp_path, _teacher(), kimg=0.008, adv_weight=0.1)
    loop.run()
    d = loop.objective
    style = tmp_path / "style"
    style.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(style / f"{i}.png")
    assert cli(["finetune", str(tmp_path / "run"), str(style), "--kimg", "0.004", "--batch", "4",
                "-o", str(tmp_path / "ft")]) == 0
    assert "new discriminator" not in capsys.readouterr().err
    from stylemix.train import networks_from_checkpoint, read_trainer_checkpoint
    _, D, G_ema = networks_from_checkpoint(read_trainer_checkpoint(tmp_path / "ft"))
    moved = max((a - b).abs().max().item() for a, b in zip(D.state_dict().values(), d.D.state_dict().values()))
    assert 0 < moved < 0.02  # the distilled D, one Adam step on
    # and G_ema is the distilled G_ema, one EMA step on (the mapping barely moves)
    assert (G_ema.mapping.fc0.weight - d.G_ema.mapping.fc0.weight).abs().max() < 0.05


def test_matching_discriminator_follows_an_explicit_channel_table():
    from stylemix.train import matching_discriminator_config
    g = ds.student_config(_mapping_of(_teacher()), 16, CHANNELS)
    cfg = matching_discriminator_config(g)
    from stylemix.networks.discriminator import Discriminator
    D = Discriminator(cfg)
    assert D.b16.fromrgb.weight.shape[0] == CHANNELS[16] and D.b8.conv0.weight.shape[0] == 16


def _small(seed: int = 3) -> Generator:
    torch.manual_seed(seed)
    return Generator(GeneratorConfig(z_dim=16, c_dim=0, w_dim=16, img_resolution=8,
                                     mapping_layers=2, channels={4: 16, 8: 16})).eval()


def test_a_grown_student_starts_as_the_small_model_drawn_bigger():
    """--grow-from: every tensor of the small model copied, the new block's RGB zero, so the
    first image is the small one's upsampled by the blocks' FIR filter (and the latent space,
    mapping and w_avg included, is the same)."""
    from stylemix.networks.ops import upsample2d
    small = _small()
    grown = ds.grow_student(small, 16, {16: 8})
    assert grown.img_resolution == 16 and grown.config.channels == {4: 16, 8: 16, 16: 8}
    assert torch.equal(grown.mapping.w_avg, small.mapping.w_avg)
    z = torch.randn(3, 16)
    with torch.no_grad():
        w = grown.mapping(z, None)
        assert torch.equal(w[:, :small.num_ws], small.mapping(z, None))
        big = grown.synthesis(w, noise_mode="const")
        want = upsample2d(small.synthesis(w[:, :small.num_ws], noise_mode="const"), grown.synthesis.b16.resample_filter)
    assert big.shape == (3, 3, 16, 16) and torch.allclose(big, want, atol=1e-6)
    assert grown.synthesis.b16.conv1.weight.abs().sum() > 0  # the new block's convolutions are live
    with pytest.raises(StylemixError, match="16:COUNT"):
        ds.grow_student(small, 16, {16: 8, 32: 4})
    with pytest.raises(StylemixError, match="not above the 8 px model"):
        ds.grow_student(small, 8, {16: 8})
    with pytest.raises(StylemixError, match="not a power of two"):
        ds.grow_student(small, 24, {16: 8})


def test_cli_distill_grows_a_model_and_refuses_a_second_mapping(tmp_path, capsys):
    from stylemix import load_generator, save
    teacher = _teacher()
    _write_pairs(tmp_path / "pairs" / "train", teacher, range(8))
    save(_small(), tmp_path / "small.safetensors")
    args = [str(tmp_path / "pairs"), "--grow-from", str(tmp_path / "small.safetensors"), "--resolution", "16",
            "--batch", "4", "--kimg", "0.008", "--snapshot-kimg", "0.008", "-o", str(tmp_path / "run")]
    assert cli(["distill", *args]) == 1
    assert "needs --channels for the new blocks" in capsys.readouterr().err
    assert cli(["distill", *args, "--channels", "16:8", "--mapping", "x.safetensors"]) == 1
    assert "leave out --mapping" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    args.remove("--resolution"), args.remove("16")  # the default: twice the model's
    assert cli(["distill", *args, "--channels", "16:8,32:8,64:8", "--resolution", "64"]) == 1
    printed = capsys.readouterr()  # the pairs are 32 px: refused before anything says "grown"
    assert "pairs are 32 px, smaller than the 64 px student" in printed.err and "grown from" not in printed.out
    assert not (tmp_path / "run").exists()
    assert cli(["distill", *args, "--channels", "16:8"]) == 0
    assert "grown from small.safetensors (8 px)" in capsys.readouterr().out
    assert load_generator(tmp_path / "run" / "generator.safetensors").img_resolution == 16
    assert cli(["distill", *args, "--channels", "16:4", "--kimg", "0.016"]) == 0  # resumed
    assert "--grow-from, --channels ignored: a resumed run keeps the network it has" in capsys.readouterr().err
