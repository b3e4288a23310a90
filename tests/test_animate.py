"""Animations: blend sweeps for one seed and latent walks, written as looping GIFs."""

import numpy as np
import pytest
from PIL import Image

import stylemix
from stylemix.animate import save_gif, sweep_frames, sweep_specs, walk_frames
from stylemix.engine import BlendEngine
from stylemix.cli import main
from conftest import NV_BASE, NV_TRANSFER

RES = [4, 8, 16, 32, 64]


def test_sweep_specs_go_there_and_back():
    alpha = sweep_specs("alpha", RES, 5)
    assert [s.alpha for s in alpha] == [0, 0.25, 0.5, 0.75, 1, 0.75, 0.5, 0.25]
    swap = sweep_specs("swap", RES, 2)
    assert [s.r_swap for s in swap] == [4, 8, 16, 32, 16, 8]
    smooth = sweep_specs("smooth", RES, 5)
    assert smooth[0].centre == pytest.approx(4) and smooth[4].centre == pytest.approx(64)
    with pytest.raises(stylemix.StylemixError, match="sweep must be one of"):
        sweep_specs("zoom", RES, 5)


def test_alpha_sweep_moves_from_base_to_transfer(nv_pair):
    engine = BlendEngine(*nv_pair)
    frames = sweep_frames(engine, sweep_specs("alpha", RES, 3), seed=1)
    first, middle, last = (f.astype(float) for f in frames[:3])
    assert np.abs(first - middle).mean() > 1 and np.abs(middle - last).mean() > 1
    base = stylemix.render.to_uint8(stylemix.render.render_seeds(nv_pair[0], [1], psi=0.7))[0]
    assert np.array_equal(frames[0], base)  # α = 0 with base's mapping is the base model


def test_walk_and_gif(tmp_path, nv_pair):
    engine = BlendEngine(*nv_pair)
    frames = walk_frames(engine, stylemix.BlendSpec.swap(16), [0, 1, 2], steps=4)
    assert len(frames) == 12
    assert not np.array_equal(frames[0], frames[1])
    save_gif(frames, tmp_path / "walk.gif", fps=10)
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 12 and gif.size == (256, 256) and gif.info["loop"] == 0
    with pytest.raises(stylemix.StylemixError, match="at least two seeds"):
        walk_frames(engine, stylemix.BlendSpec.swap(16), [0])


def test_animate_command(tmp_path, capsys):
    rc = main(["animate", str(NV_BASE), str(NV_TRANSFER), "--sweep", "swap", "-o", str(tmp_path / "s.gif")])
    assert rc == 0 and "6 frames, swap sweep" in capsys.readouterr().out
    rc = main(["animate", str(NV_BASE), str(NV_TRANSFER), "--walk", "0-1", "--alpha", "0.5",
               "--frames", "3", "-o", str(tmp_path / "w.gif")])
    assert rc == 0 and Image.open(tmp_path / "w.gif").n_frames == 6
