"""The minimal app page builds on a model pair and renders base | blend | transfer."""

import gradio as gr
import numpy as np

import app
from conftest import NV_BASE, NV_TRANSFER, ROSINALITY


def test_page_builds(nv_pair):
    assert isinstance(app.build_demo(NV_BASE, NV_TRANSFER), gr.Blocks)


def test_triptych_shows_a_real_blend(nv_pair):
    base, blend, transfer = app.render_triptych(*nv_pair, seed=1, psi=0.7, r_swap=16, low="transfer")
    assert base.shape == blend.shape == transfer.shape == (256, 256, 3)
    assert base.dtype == np.uint8
    assert not np.array_equal(blend, base) and not np.array_equal(blend, transfer)
    # Nearest-neighbour enlargement: each model pixel is a crisp 4×4 block.
    assert np.array_equal(blend[::4, ::4].repeat(4, 0).repeat(4, 1), blend)


def test_page_explains_a_bad_pair(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a model")
    demo = app.build_demo(bad, NV_TRANSFER)
    text = " ".join(str(getattr(block, "value", "")) for block in demo.blocks.values())
    assert "Cannot load the model pair" in text and "not a model file" in text
