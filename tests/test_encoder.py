"""The encoder: shapes, the file naming its base, training in the shared loop, toonify's use."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import stylemix
from conftest import random_generator
from stylemix.cli import main as cli
from stylemix.encoder import (EncoderMismatchError, encoder_for, generator_fingerprint, load_encoder,
                              save_encoder)
from stylemix.errors import ModelLoadError, StylemixError
from stylemix.formats import native
from stylemix.toonify import Toonifier
from stylemix.train import TrainingLoop
from stylemix.train.encoder import EncoderObjective, EncoderTrainConfig, alignment_augment, read_encoder_checkpoint


@pytest.fixture(scope="module")
def base():
    return random_generator(3, img_resolution=32)


def test_encoder_starts_as_one_w_per_layer_near_the_mean(base):
    E = encoder_for(base, width=8, samples=2000)
    ws, offsets = E(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert ws.shape == (2, base.num_ws, base.w_dim) and offsets.shape == ws.shape
    assert torch.equal(offsets, torch.zeros_like(offsets))       # zero-initialised offset heads
    assert torch.allclose(ws[:, 0], ws[:, -1])                   # so every layer gets the same w
    with pytest.raises(StylemixError, match=r"faces of shape \(N, 3, 32, 32\)"):
        E(torch.zeros(1, 3, 16, 16))


def test_fingerprint_follows_weights_not_files(base, tmp_path):
    native.save(base, tmp_path / "a.safetensors", synthesis_dtype=torch.float32)
    assert generator_fingerprint(stylemix.load_generator(tmp_path / "a.safetensors")) == generator_fingerprint(base)
    other = random_generator(4, img_resolution=32)
    assert generator_fingerprint(other) != generator_fingerprint(base)


def test_encoder_file_round_trip_and_refuses_another_base(base, tmp_path):
    E = encoder_for(base, width=8, samples=2000)
    path = tmp_path / "e.safetensors"
    save_encoder(E, path, generator_fingerprint(base), "base.pkl", info={"kimg": 1.5})
    again = load_encoder(path, base=base)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.allclose(again.encode(x), E.eval().encode(x), atol=1e-2)  # float16 weights
    assert again.info["kimg"] == 1.5
    with pytest.raises(EncoderMismatchError, match=r"trained for another base \(base.pkl\).*train-encoder"):
        load_encoder(path, base=random_generator(4, img_resolution=32))
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(ModelLoadError, match="not a readable safetensors"):
        load_encoder(tmp_path / "junk.safetensors")
    native.save(base, tmp_path / "g.safetensors")
    with pytest.raises(ModelLoadError, match="not a stylemix encoder"):
        load_encoder(tmp_path / "g.safetensors")


def test_augmentation_keeps_shape_and_range_and_changes_pixels():
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    y = alignment_augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert (y - x).abs().mean() > 0.01


def _objective(base, **overrides):
    settings = dict(batch=8, kimg=0.16, lr=0.003, snapshot_kimg=0.08, log_every=5, val_count=8,
                    recon_interval=2, recon_batch=2)
    settings.update(overrides)
    return EncoderObjective(encoder_for(base, width=8, samples=2000), base, EncoderTrainConfig(**settings))


def test_training_lowers_held_out_latent_error_and_resumes(base, tmp_path):
    objective = _objective(base)
    before = objective.evaluate()["val_latent"]
    loop = TrainingLoop(objective, tmp_path / "run", log=lambda line: None)
    loop.run()
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["kimg"] for m in lines] == [0.08, 0.16]
    assert lines[-1]["val_latent"] < before - 0.02
    E = load_encoder(tmp_path / "run" / "encoder.safetensors", base=base)
    assert E.info["kimg"] == 0.16
    ckpt = read_encoder_checkpoint(tmp_path / "run")
    assert ckpt is not None and ckpt["nimg"] == 160


def test_cli_train_encoder_then_toonify_with_it(base, tmp_path, capsys):
    transfer = random_generator(3, img_resolution=32)
    with torch.no_grad():
        transfer.synthesis.b4.const.add_(0.5)
    native.save(base, tmp_path / "base.safetensors", synthesis_dtype=torch.float32)
    native.save(transfer, tmp_path / "transfer.safetensors", synthesis_dtype=torch.float32)
    run = tmp_path / "run"
    args = ["train-encoder", "--base", str(tmp_path / "base.safetensors"), "--kimg", "0.016",
            "--batch", "8", "--snapshot-kimg", "0.016", "--width", "8", "-o", str(run)]
    assert cli(args) == 0
    assert cli([*args[:-4], "--kimg", "0.032", "--snapshot-kimg", "0.016", "--width", "8", "-o", str(run)]) == 0
    assert "resuming" in capsys.readouterr().out
    assert read_encoder_checkpoint(run)["nimg"] == 32
    # the encoder goes beside its base as BASE.encoder.safetensors and is then found by itself
    (run / "encoder.safetensors").rename(tmp_path / "base.encoder.safetensors")
    G = stylemix.load_generator(tmp_path / "base.safetensors")
    E = load_encoder(tmp_path / "base.encoder.safetensors", base=G)
    # --init: a new run starts from that encoder's weights (lr 0: it ends exactly there)
    tuned = tmp_path / "tuned"
    assert cli([*args[:-4], "--init", str(tmp_path / "base.encoder.safetensors"), "--lr", "0",
                "--snapshot-kimg", "0.016", "-o", str(tuned)]) == 0
    assert "fine-tuning it" in capsys.readouterr().out
    start = read_encoder_checkpoint(tuned)
    assert start["nimg"] == 16
    assert all(torch.equal(start["E"][k].cpu(), v.cpu()) for k, v in E.state_dict().items())
    face = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    pair = Toonifier(G, stylemix.load_generator(tmp_path / "transfer.safetensors"), encoder=E)
    encoded = pair.project(face, None, init="encoder")
    from stylemix.toonify import refinement_config
    refined = pair.project(face, refinement_config(3), init="encoder")
    assert len(refined.history) == 3 and not refined.noise   # the model's own noise maps
    assert not torch.equal(encoded.ws, refined.ws)
    # starting from the encoding, refinement lowers the loss of the first step
    assert refined.history[-1]["loss"] <= refined.history[0]["loss"]
    # the toon is drawn halfway back to the encoding (toon_latent); the reconstruction at the refined latent
    from stylemix.toonify import TOON_REFINEMENT_SHARE, toon_latent
    encoding = pair.project(face, refinement_config(0), init="encoder")
    assert torch.equal(refined.init_ws, encoding.ws) and torch.equal(encoding.ws, pair.encode(face).ws)
    halfway = toon_latent(refined).ws
    assert torch.allclose(halfway, encoding.ws + TOON_REFINEMENT_SHARE * (refined.ws - encoding.ws))
    assert not torch.allclose(halfway, refined.ws) and torch.equal(toon_latent(encoding).ws, encoding.ws)
    spec = stylemix.BlendSpec.linear(1.0)
    assert pair.render_toon(refined, spec) != pair.render(refined, spec)
    assert pair.render_toon(refined, spec) == pair.render(toon_latent(refined), spec)
    with pytest.raises(StylemixError, match="init must be"):
        pair.project(face, None, init="photo")
    plain = Toonifier(G, G)
    with pytest.raises(StylemixError, match="has no encoder.*train-encoder"):
        plain.project(face, None, init="encoder")


def test_cli_toonifies_a_folder_resumably_with_one_line_per_skipped_file(tmp_path, capsys):
    """The default pair (with its shipped encoder) on a folder: faces written, bad files named."""
    from skimage import data
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(data.coffee()).save(folder / "coffee.jpg")
    (folder / "notes.png").write_text("not an image")
    out = tmp_path / "toons"
    assert cli(["toonify", str(folder), "--steps", "0", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped coffee.jpg: no face found" in captured.err
    assert "skipped notes.png:" in captured.err
    assert "wrote 1 toons" in captured.out and "2 skipped" in captured.out
    toon = out / "astronaut.toon.png"
    assert Image.open(toon).size == (256, 256)
    stamp = toon.stat().st_mtime_ns
    assert cli(["toonify", str(folder), "--steps", "0", "-o", str(out)]) == 0
    assert "1 already done" in capsys.readouterr().out and toon.stat().st_mtime_ns == stamp
    assert cli(["toonify", str(folder), "--steps", "0"]) == 1
    assert "needs -o OUTDIR" in capsys.readouterr().err


def test_cli_toonify_defaults_to_photo_toon_png_and_never_overwrites(tmp_path, capsys):
    from skimage import data
    photo = tmp_path / "me.png"
    Image.fromarray(data.astronaut()).save(photo)
    assert cli(["toonify", str(photo), "--steps", "0"]) == 0
    out = tmp_path / "me.toon.png"
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out
    assert cli(["toonify", str(photo), "--steps", "0"]) == 1
    assert "exists: pass --force" in capsys.readouterr().err
    assert cli(["toonify", str(photo), "--steps", "0", "--force"]) == 0


def test_cli_toonify_checks_outputs_and_steps_before_the_slow_part(tmp_path, capsys):
    from skimage import data
    photo = tmp_path / "me.png"
    Image.fromarray(data.astronaut()).save(photo)
    (tmp_path / "q.sheet.png").write_bytes(b"mine")
    assert cli(["toonify", str(photo), "-o", str(tmp_path / "q.png"), "--sheet", "--steps", "0"]) == 1
    assert "q.sheet.png exists: pass --force" in capsys.readouterr().err
    assert (tmp_path / "q.sheet.png").read_bytes() == b"mine"
    assert cli(["toonify", str(photo), "--steps", "-3"]) == 1
    assert "--steps must be 0 or more" in capsys.readouterr().err
    assert cli(["toonify", str(photo), "--toon-share", "1.5"]) == 1
    assert "--toon-share must be between 0 (the encoder's latent) and 1" in capsys.readouterr().err
    assert not (tmp_path / "me.toon.png").exists()
    assert cli(["toonify", str(tmp_path / "nope.png")]) == 1
    assert "no such photo file" in capsys.readouterr().err
    folder = tmp_path / "photos"
    folder.mkdir()
    assert cli(["toonify", str(folder), "-o", str(photo)]) == 1
    assert "is a file: toonifying a folder needs -o OUTDIR" in capsys.readouterr().err


def test_cli_toon_share_moves_the_toon_from_the_encoding_to_the_refined_latent(tmp_path, capsys):
    from skimage import data
    photo = tmp_path / "me.png"
    Image.fromarray(data.astronaut()).save(photo)
    toons = {}
    for share in ("0", "0.5", "1"):
        out = tmp_path / f"t{share}.png"
        assert cli(["toonify", str(photo), "--steps", "4", "--toon-share", share, "-o", str(out)]) == 0
        assert f"the toon at --toon-share {float(share):g}" in capsys.readouterr().out
        toons[share] = np.asarray(Image.open(out), float)
    assert cli(["toonify", str(photo), "--steps", "0", "-o", str(tmp_path / "enc.png")]) == 0
    encoded = np.asarray(Image.open(tmp_path / "enc.png"), float)
    assert np.abs(toons["0"] - encoded).max() <= 1           # share 0: the encoding's toon
    assert np.abs(toons["1"] - toons["0"]).mean() > np.abs(toons["0.5"] - toons["0"]).mean() > 0


def test_an_nvidia_base_with_a_discriminator_adds_its_features_to_the_loss(tmp_path, capsys):
    from conftest import NV_BASE
    out = tmp_path / "run"
    assert cli(["train-encoder", "--base", str(NV_BASE), "--kimg", "0.008", "--batch", "4",
                "--snapshot-kimg", "0.008", "--width", "8", "-o", str(out)]) == 0
    assert "has a discriminator: its features join" in capsys.readouterr().out
    line = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert line["D_features"] > 0
    E = load_encoder(out / "encoder.safetensors", base=stylemix.load_generator(NV_BASE))
    assert E.config.resolution == 64
