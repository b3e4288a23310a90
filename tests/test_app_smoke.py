"""The app page: blend triptych, and the Toonify tab driven through a running server."""

import numpy as np
import pytest
from PIL import Image
from skimage import data

import gradio as gr
import stylemix
import app
from stylemix.toonify import Toonifier
from conftest import NV_BASE, NV_TRANSFER


def test_page_builds():
    assert isinstance(app.build_demo(NV_BASE, NV_TRANSFER), gr.Blocks)


def test_triptych_shows_a_real_blend(nv_pair):
    base, blend, transfer = app.render_triptych(Toonifier(*nv_pair), 1, 0.7, stylemix.BlendSpec.swap(16))
    assert base.shape == blend.shape == transfer.shape == (256, 256, 3) and base.dtype == np.uint8
    assert not np.array_equal(blend, base) and not np.array_equal(blend, transfer)
    assert np.array_equal(blend[::4, ::4].repeat(4, 0).repeat(4, 1), blend)  # crisp 4×4 pixels


def test_page_explains_a_bad_pair(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a model")
    demo = app.build_demo(bad, NV_TRANSFER)
    text = " ".join(str(getattr(block, "value", "")) for block in demo.blocks.values())
    assert "Cannot load the model pair" in text and "not a model file" in text


@pytest.fixture(scope="module")
def client():
    from gradio_client import Client
    demo = app.build_demo(NV_BASE, NV_TRANSFER)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None,
                        quiet=True)
    yield Client(demo.local_url, verbose=False)
    demo.close()


def test_toonify_tab_through_the_server(client, tmp_path):
    from gradio_client import handle_file
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    # A streaming handler: predict() returns its last yield (session state is not returned).
    aligned, rec, toon, download = client.predict(
        handle_file(str(photo)), 20, 16, "transfer", api_name="/run_toonify")
    toon_img = np.asarray(Image.open(toon))
    assert toon_img.shape[:2] == (256, 256)
    assert Image.open(download).size == (64, 64)
    assert "swap16-lowT" in download
    # Changing the blend re-renders this session's projected face, without projecting again.
    toon2, download2 = client.predict(8, "base", api_name="/rerender_toon")
    assert "swap8-lowB" in download2
    assert not np.array_equal(np.asarray(Image.open(toon2)), toon_img)


def test_toonify_tab_reports_no_face(client, tmp_path):
    from gradio_client import handle_file
    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(photo)
    with pytest.raises(Exception, match="no face found"):
        client.predict(handle_file(str(photo)), 20, 16, "transfer", api_name="/run_toonify")
