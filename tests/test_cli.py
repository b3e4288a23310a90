"""The command line: each command works, and each user error is one clear line with exit ≠ 0."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stylemix
from stylemix.cli import main
from conftest import FIXTURES, NV_BASE, NV_TRANSFER, ROSINALITY, render


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_info(capsys):
    rc, out, _ = run(capsys, "info", NV_BASE)
    assert rc == 0
    assert "NVIDIA network pickle (G_ema)" in out and "StyleGAN2, skip" in out
    assert "4:128ch, 8:128ch, 16:128ch, 32:64ch, 64:32ch" in out
    assert "parameters     1,004,664" in out
    rc, out, _ = run(capsys, "info", ROSINALITY)
    assert rc == 0 and "rosinality checkpoint" in out


def test_generate_writes_pngs_and_grid(capsys, tmp_path, renders):
    rc, out, _ = run(capsys, "generate", NV_BASE, "--seeds", "0-3", "--psi", "0.7", "--size", "0",
                     "-o", tmp_path)
    assert rc == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png"]
    img = np.asarray(Image.open(tmp_path / "seed0002.png"))
    ref = (np.clip(renders["base_psi0.7_img"][2], -1, 1) + 1) * 127.5
    assert img.shape == (64, 64, 3)
    assert np.abs(img.astype(float) - ref.transpose(1, 2, 0)).max() <= 1.0  # seeds follow NVIDIA's convention
    assert Image.open(tmp_path / "grid.png").size == (64 * 2 + 2, 64 * 2 + 2)


def test_generate_saves_at_least_256_px_unless_asked(capsys, tmp_path, renders):
    """Default: the 64 px model's images are resampled (Lanczos) to 256 px; --size picks."""
    rc, out, _ = run(capsys, "generate", NV_BASE, "--seeds", "2", "-o", tmp_path / "one.png")
    assert rc == 0 and "seed 2, 256 px" in out
    big = Image.open(tmp_path / "one.png")
    assert big.size == (256, 256) and big.format == "PNG" and not (tmp_path / "one.png").is_dir()
    ref = ((np.clip(renders["base_psi0.7_img"][2], -1, 1) + 1) * 127.5).transpose(1, 2, 0)
    small = np.asarray(big.resize((64, 64), Image.BOX), float)  # back down: the same picture
    assert np.abs(small - ref).mean() < 3
    assert len(np.unique(np.asarray(big).reshape(-1, 3), axis=0)) > 4 * 64 * 64 // 2  # not blocky
    rc, out, _ = run(capsys, "generate", NV_BASE, "--seeds", "0-1", "--size", "100", "-o", tmp_path / "g.png")
    assert rc == 0 and Image.open(tmp_path / "g.png").size == (2 * 100 + 2, 100)  # the grid
    rc, _, err = run(capsys, "generate", NV_BASE, "--seeds", "0", "-o", tmp_path / "one.jpg")
    assert rc == 1 and "lossless PNG" in err and not (tmp_path / "one.jpg").exists()
    for command in ("generate", "toonify", "project"):
        with pytest.raises(SystemExit, match="^0$"):  # --help exits with status 0
            main([command, "--help"])
        assert "at least 256 px with a Lanczos filter" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("flags,label,alphas", [
    (["--swap", "16"], "swap16-lowT", "4:1, 8:1, 16:1, 32:0, 64:0"),
    (["--swap", "16", "--low", "base"], "swap16-lowB", "4:0, 8:0, 16:0, 32:1, 64:1"),
    (["--alpha", "0.5"], "alpha0.5", "4:0.5, 8:0.5"),
    (["--smooth", "16,0.5"], "smooth16w0.5-lowT", "16:0.5"),
    (["--alphas", "4:1,8:1,16:0.5"], "res4-1_8-1_16-0.5", "16:0.5, 32:0, 64:0"),
])
def test_blend_specs(capsys, tmp_path, flags, label, alphas):
    out_path = tmp_path / "b.safetensors"
    rc, out, err = run(capsys, "blend", NV_BASE, NV_TRANSFER, *flags, "-o", out_path)
    assert rc == 0, err
    assert f"blend {label}" in out and alphas in out
    assert stylemix.load_generator(out_path).blend_info["label"] == label


def test_blend_to_pkl_matches_fixture_and_preview(capsys, tmp_path, renders):
    out_path = tmp_path / "toon.pkl"
    rc, out, _ = run(capsys, "blend", NV_BASE, NV_TRANSFER, "--swap", "8", "--mapping", "base",
                     "-o", out_path, "--preview", "0-1")
    assert rc == 0
    B = stylemix.load_generator(out_path)
    z = torch.from_numpy(renders["z"])
    assert (render(B, z) - torch.from_numpy(renders["swap8_lowT_psi1.0_img"])).abs().max() <= 1e-4
    assert Image.open(tmp_path / "toon.preview.png").size == (3 * 64 + 4, 2 * 64 + 2)


@pytest.mark.parametrize("args,needle", [
    (["info", "/no/such.pkl"], "no such model file"),
    (["blend", FIXTURES / "stylegan3" / "sg3t64_base.pkl", FIXTURES / "stylegan3" / "sg3r64_transfer.pkl",
      "--swap", "16", "-o", "x.pkl"], "'stylegan3-t' generator with a StyleGAN3 'stylegan3-r'"),
    (["blend", NV_BASE, NV_TRANSFER, "--swap", "16", "--alpha", "0.5", "-o", "x.pkl"], "exactly one of"),
    (["blend", NV_BASE, NV_TRANSFER, "--swap", "12", "-o", "x.pkl"], "power of two"),
    (["blend", NV_BASE, NV_TRANSFER, "--smooth", "16", "-o", "x.pkl"], "CENTRE,WIDTH"),
    (["blend", NV_BASE, NV_TRANSFER, "--alphas", "4=1", "-o", "x.pkl"], "look like 4:1,8:1"),
    (["blend", NV_BASE, NV_TRANSFER, "--alphas", "128:1", "-o", "x.pt"], "α given for 128 px"),
    (["blend", NV_BASE, NV_TRANSFER, "--swap", "16", "-o", "x.zip"], "cannot tell the format"),
    (["blend", ROSINALITY, NV_TRANSFER, "--swap", "16", "-o", "x.pkl"], "needs an NVIDIA .pkl"),
    (["blend", NV_BASE, FIXTURES / "stylegan3" / "sg3r64_base.pkl", "--swap", "8", "-o", "x.pt"], "StyleGAN3"),
    (["generate", NV_BASE, "--seeds", "7-3", "-o", "out"], "bad seed range"),
])
def test_errors_are_one_line(capsys, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, *args)
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stylemix: error: ") and needle in lines[0], err
    assert not list(Path(tmp_path).glob("x.*"))


@pytest.mark.parametrize("command", [["toonify", "{bad}", "-o", "out.png"], ["align", "{bad}", "-o", "out.png"],
                                     ["project", "{bad}", "--model", str(NV_BASE), "-o", "w.npz"]])
def test_a_bad_photo_is_named_on_the_command_line(capsys, tmp_path, monkeypatch, command):
    """The library's photo errors leave paths out (the app shows them to visitors); the CLI
    puts the file's name in front, since the user may give several."""
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"not an image at all")
    rc, _, err = run(capsys, *(arg.format(bad=bad) for arg in command))
    assert rc != 0
    assert err.strip() == ("stylemix: error: holiday.png: the file is not an image stylemix can read "
                           "(send a JPEG, PNG or WebP photo)")


def test_python_dash_m_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "stylemix", "info", str(tmp_path / "nope.pt")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"stylemix: error: no such model file: {tmp_path / 'nope.pt'}"


def test_contact_sheet(capsys, tmp_path):
    out_path = tmp_path / "sheet.png"
    rc, out, _ = run(capsys, "sheet", NV_BASE, NV_TRANSFER, "--seeds", "0-1", "--cell", "64", "-o", out_path)
    assert rc == 0 and "T<=r" in out
    sheet = np.asarray(Image.open(out_path).convert("RGB")).astype(int)
    columns = 2 + 2 * 4  # base, T<=4..32, B<=4..32, transfer
    assert sheet.shape[1] == columns * (64 + 4) + 4
    tile = lambda c: sheet[18 + 4: 18 + 4 + 64, 4 + c * 68: 4 + c * 68 + 64]
    # Swapping at 32 with low from base keeps base everywhere but the last block: closer to base.
    b_le_32, base, transfer = tile(8), tile(0), tile(9)
    assert np.abs(b_le_32 - base).mean() < np.abs(b_le_32 - transfer).mean()


def _astronaut_png(tmp_path):
    from skimage import data
    path = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def test_align_project_toonify_commands(capsys, tmp_path):
    photo = _astronaut_png(tmp_path)
    rc, out, err = run(capsys, "align", photo, "--size", "64", "-o", tmp_path / "face.png")
    assert rc == 0, err
    assert Image.open(tmp_path / "face.png").size == (64, 64)
    rc, out, err = run(capsys, "project", tmp_path / "face.png", "--model", NV_BASE, "--steps", "20",
                       "-o", tmp_path / "face.npz")
    assert rc == 0, err
    assert "35 steps (W, then W+)" in out and "PSNR" in out and "step 35/35" in err  # 20 W + 15 W+
    assert np.load(tmp_path / "face.npz")["ws"].shape == (1, 10, 64)
    assert Image.open(tmp_path / "face.reconstruction.png").size == (256, 256)
    rc, out, err = run(capsys, "toonify", photo, "--base", NV_BASE, "--transfer", NV_TRANSFER,
                       "--swap", "16", "--steps", "20", "--sheet", "-o", tmp_path / "toon.png")
    assert rc == 0, err
    assert Image.open(tmp_path / "toon.png").size == (256, 256)  # enlarged by default
    assert Image.open(tmp_path / "toon.sheet.png").size == (4 * 256, 256)


def test_toonify_errors_are_one_line(capsys, tmp_path):
    from skimage import data
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    (tmp_path / "notes.png").write_bytes(b"plain text")
    photo = _astronaut_png(tmp_path)
    cases = [
        (["align", tmp_path / "coffee.png", "-o", tmp_path / "x.png"], "no face found"),
        (["align", tmp_path / "notes.png", "-o", tmp_path / "x.png"], "not an image"),
        (["project", tmp_path / "coffee.png", "--model", NV_BASE, "-o", tmp_path / "x.npz"],
         "not an aligned square face"),
        (["toonify", photo, "--base", NV_BASE, "--transfer", NV_TRANSFER, "--swap", "16", "--alpha",
          "0.5", "-o", tmp_path / "x.png"], "exactly one of"),
    ]
    for args, needle in cases:
        rc, out, err = run(capsys, *args)
        assert rc == 1 and err.count("\n") == 1 and needle in err, (args, err)
    assert not list(tmp_path.glob("x.*"))


def test_blend_several_models(capsys, tmp_path):
    out_path = tmp_path / "three.safetensors"
    rc, out, err = run(capsys, "blend", NV_BASE, NV_TRANSFER, ROSINALITY, "--model-alphas", "4:1,8:1",
                       "--model-alphas", "64:0.5", "-o", out_path)
    assert rc == 0, err
    assert "skip64_transfer.pkl: α 4:1, 8:1, 16:0" in out and "skip64_base_rosinality.pt: α" in out
    assert stylemix.load_generator(out_path).blend_info["label"] == "res4-1_8-1+res64-0.5"
    rc, _, err = run(capsys, "blend", NV_BASE, NV_TRANSFER, ROSINALITY, "--model-alphas", "4:1",
                     "-o", tmp_path / "x.pt")
    assert rc == 1 and "need 2 --model-alphas lists" in err


def test_closed_pipe_is_not_an_error():
    # The reader leaves before stylemix writes (`| true`): no error line, exit status 0.
    script = f"{sys.executable} -m stylemix info {NV_BASE} | true; echo \"status=${{PIPESTATUS[0]}}\""
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert "status=0" in proc.stdout and "Broken pipe" not in proc.stderr, proc.stderr


def test_blend_into_a_tf_template(tmp_path):
    out = tmp_path / "blend_tf.pkl"
    tf = FIXTURES / "tf" / "skip64_base_tf.pkl"
    assert main(["blend", str(NV_BASE), str(NV_TRANSFER), "--swap", "16", "--template", str(tf),
                 "-o", str(out)]) in (0, None)
    assert stylemix.load_generator(out).source.format == "tf_pkl"


def test_a_bug_is_one_line_pointing_at_debug_and_debug_shows_the_traceback(monkeypatch, capsys):
    """Only the project's own errors (and OSError) read as a user's mistake; anything else is a bug."""
    import stylemix.cli.models as models

    def broken(*args, **kwargs):
        raise KeyError("w_avg")
    monkeypatch.setattr(models.formats, "load_generator", broken)
    assert main(["info", "x.pkl"]) == 2
    err = capsys.readouterr().err
    assert "internal error (KeyError" in err and "--debug" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(KeyError):
        main(["--debug", "info", "x.pkl"])
