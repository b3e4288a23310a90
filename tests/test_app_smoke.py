"""The app: the page builds, and a running server answers the Blend and Toonify controls."""

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

import gradio as gr
import stylemix
import app
from stylemix.toonify import Toonifier
from stylemix.ui import PRESETS, export_blend
from conftest import FIXTURES, NV_BASE, NV_TRANSFER, ROSINALITY, render

SWAP16 = [1, 1, 1, 0, 0, 0, 0, 0, 0]  # one slider per 4…1024 px; ≤ 16 from transfer
HIGH = [0, 0, 0, 1, 1, 0, 0, 0, 0]    # 32 and 64 px from transfer


def test_page_builds():
    demo = app.build_demo(NV_BASE, NV_TRANSFER)
    assert isinstance(demo, gr.Blocks)
    tabs = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert tabs == ["Blend", "Mix several models", "Toonify"]


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
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield Client(demo.local_url, verbose=False)
    demo.close()


def test_blend_endpoint_equals_the_library(client, nv_pair):
    base, blend, transfer, grid, timing = client.predict(3, 0.7, "base", *SWAP16, api_name="/render_blend")
    B = stylemix.blend(*nv_pair, stylemix.BlendSpec.swap(16))
    expected = stylemix.render.to_uint8(stylemix.render.render_seeds(B, [3], psi=0.7))[0]
    shown = np.asarray(Image.open(blend).convert("RGB"))[::4, ::4]
    assert np.array_equal(shown, expected)  # the page shows exactly the library's render
    assert "ms" in timing and "res4-1_8-1_16-1" in timing
    other = client.predict(3, 0.7, "base", *HIGH, api_name="/render_blend")[1]
    assert not np.array_equal(np.asarray(Image.open(other)), np.asarray(Image.open(blend)))


def test_presets_fill_the_sliders(client):
    assert client.predict(PRESETS[0], 16, 0.5, 0.5, api_name="/preset") == tuple(SWAP16)
    assert client.predict(PRESETS[1], 8, 0.5, 0.5, api_name="/preset")[:5] == (0, 0, 1, 1, 1)
    assert client.predict(PRESETS[2], 8, 0.3, 0.5, api_name="/preset")[:5] == (0.3,) * 5


def test_export_pkl_and_safetensors(client, nv_pair):
    z = np.random.RandomState(0).randn(2, 64).astype(np.float32)
    import torch
    expected = render(stylemix.blend(*nv_pair, stylemix.BlendSpec.swap(16)), torch.from_numpy(z))
    for endpoint, suffix in (("/export_pkl", ".pkl"), ("/export_pt", ".pt"), ("/export_safetensors", ".safetensors")):
        path = client.predict("base", *SWAP16, api_name=endpoint)
        assert path.endswith(f"stylemix-res4-1_8-1_16-1{suffix}")
        assert torch.allclose(render(stylemix.load_generator(path), torch.from_numpy(z)), expected)


def test_toonify_tab_through_the_server(client, tmp_path):
    from gradio_client import handle_file
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    # A streaming handler: predict() returns its last yield (session state is not returned).
    aligned, rec, toon, download = client.predict(
        handle_file(str(photo)), 20, "base", *SWAP16, api_name="/run_toonify")
    toon_img = np.asarray(Image.open(toon))
    assert toon_img.shape[:2] == (256, 256)
    assert Image.open(download).size == (64, 64)
    assert "res4-1_8-1_16-1" in download
    # Moving the sliders re-renders this session's projected face, without projecting again.
    toon2, download2 = client.predict("base", *HIGH, api_name="/rerender_toon")
    assert "res32-1_64-1" in download2
    assert not np.array_equal(np.asarray(Image.open(toon2)), toon_img)


def test_toonify_tab_reports_no_face(client, tmp_path):
    from gradio_client import handle_file
    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(photo)
    with pytest.raises(Exception, match="no face found"):
        client.predict(handle_file(str(photo)), 20, "base", *SWAP16, api_name="/run_toonify")


def test_pkl_export_of_a_rosinality_base_is_explained(tmp_path):
    from stylemix.ui import export_blend
    G_base = stylemix.load_generator(ROSINALITY)
    G_transfer = stylemix.load_generator(NV_TRANSFER)
    with pytest.raises(stylemix.ExportError, match="needs an NVIDIA .pkl"):
        export_blend(G_base, G_transfer, stylemix.BlendSpec.swap(16), ".pkl")


# -- model picker and uploads ------------------------------------------------------------------

def test_pair_helpers(tmp_path):
    import shutil
    from stylemix.ui.pairs import PairCache, check_upload, list_models, resolve_model
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(NV_BASE, models / "base.pkl")
    (models / "notes.txt").write_text("not a model")
    assert list_models(models) == ["base.pkl"]
    assert resolve_model("base.pkl", models) == (models / "base.pkl").resolve()
    for bad in ("../models/../secret.pkl", "/etc/passwd", "missing.pkl"):
        with pytest.raises(stylemix.StylemixError, match="not one of the models offered"):
            resolve_model(bad, models)
    with pytest.raises(stylemix.StylemixError, match="over this server's limit of 1 MB"):
        check_upload(str(models / "base.pkl"), None, 2 ** 20)
    with pytest.raises(stylemix.StylemixError, match="did not come through the upload box"):
        check_upload(str(models / "base.pkl"), tmp_path / "uploads", 2 ** 30)
    cache = PairCache(max_bytes=1)  # room for one pair only
    key1, t1 = cache.load(NV_BASE, NV_TRANSFER)
    assert cache.load(models / "base.pkl", NV_TRANSFER)[1] is t1  # same content: same engine
    key2, _ = cache.load(ROSINALITY, NV_TRANSFER)
    assert len(cache) == 1 and cache.get(key1) is None and cache.get(key2) is not None


def test_models_picked_and_uploaded(tmp_path):
    import shutil
    from gradio_client import Client, handle_file
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(NV_BASE, models / "faces.pkl")
    shutil.copy(NV_TRANSFER, models / "toons.pkl")
    demo = app.build_demo(tmp_path / "none.pkl", tmp_path / "none.pkl", models_dir=models,
                          max_upload_mb=64)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        # No default pair: the page explains, and nothing renders until a pair is loaded.
        text = " ".join(str(getattr(b, "value", "")) for b in demo.blocks.values())
        assert "Cannot load the model pair: no such model file: none.pkl" in text
        assert client.predict(0, 0.7, "base", *SWAP16, api_name="/render_blend")[1] is None
        out = client.predict("faces.pkl", "toons.pkl", api_name="/load_models")
        assert "Loaded faces.pkl + toons.pkl (64 px)" in out[0]
        assert client.predict(0, 0.7, "base", *SWAP16, api_name="/render_blend")[1] is not None
        # A name that is not offered is refused (by Gradio's own choice check, and by
        # resolve_model behind it: test_pair_helpers); the current pair stays loaded.
        with pytest.raises(Exception, match="not in the list of choices"):
            client.predict("../models/faces.pkl", "/etc/passwd", api_name="/load_models")
        assert client.predict(0, 0.7, "base", *SWAP16, api_name="/render_blend")[1] is not None
        # Uploads: a rosinality base with an NVIDIA transfer works; a StyleGAN3 file is refused.
        out = client.predict(handle_file(str(ROSINALITY)), handle_file(str(NV_TRANSFER)),
                             api_name="/load_uploads")
        assert "Loaded skip64_base_rosinality.pt + skip64_transfer.pkl" in out[0]
        sg3 = FIXTURES / "stylegan3" / "sg3t64_base.pkl"
        out = client.predict(handle_file(str(sg3)), handle_file(str(NV_TRANSFER)), api_name="/load_uploads")
        assert "Not loaded" in out[0] and "StyleGAN3" in out[0] and "StyleGAN2" in out[0]
        # A StyleGAN3 pair loads; the page says how its sliders group the layers, and renders.
        sg3_transfer = FIXTURES / "stylegan3" / "sg3t64_transfer.pkl"
        out = client.predict(handle_file(str(sg3)), handle_file(str(sg3_transfer)), api_name="/load_uploads")
        assert "Loaded sg3t64_base.pkl + sg3t64_transfer.pkl (64 px)" in out[0]
        assert "sampling rate" in out[0] and "32 px = L4_52_128" in out[0]
        images = client.predict(0, 0.7, "base", *SWAP16, api_name="/render_blend")
        assert all(images[i] is not None for i in range(3))
        evil = tmp_path / "evil.pkl"
        import os, pickle

        class Evil:
            def __reduce__(self):
                return os.system, ("touch " + str(tmp_path / "CANARY"),)

        evil.write_bytes(pickle.dumps({"G_ema": Evil()}))
        out = client.predict(handle_file(str(evil)), handle_file(str(NV_TRANSFER)), api_name="/load_uploads")
        assert "Not loaded" in out[0] and "refusing to load" in out[0]
        assert not (tmp_path / "CANARY").exists()
    finally:
        demo.close()


def test_exports_land_in_a_per_session_area_that_is_pruned(tmp_path, nv_pair):
    from stylemix.ui.exports import ExportArea
    area = ExportArea(tmp_path / "exports", max_age_s=60)
    first = Path(export_blend(*nv_pair, stylemix.BlendSpec.swap(16), ".safetensors", area, "alice"))
    other = Path(export_blend(*nv_pair, stylemix.BlendSpec.swap(8), ".safetensors", area, "bob"))
    assert first.is_file() and first.parent.parent == area.session_dir("alice")
    assert other.parent.parent == area.session_dir("bob") != area.session_dir("alice")
    assert first.name.startswith("stylemix-") and first.name.endswith(".safetensors")
    assert not list(tmp_path.glob("*.tmp*")) and not list(first.parent.glob("*.tmp*"))
    assert area.session_dir("../../etc").parent == area.root  # ids are hashed, never paths
    assert area.prune(now=time.time() + 120) == 2 and not first.exists() and not other.exists()
    area.path_for("alice", "x.png").write_bytes(b"x")
    area.forget("alice")
    assert not area.session_dir("alice").exists()



def test_channel_panel_ranks_applies_and_clears(client, nv_pair):
    table, suggested, alpha = client.predict(16, "whole image", 3, 0.7, "base", *SWAP16,
                                             api_name="/rank_channels")
    assert "| channel | change |" in table and len(suggested.split(",")) == 4
    assert alpha == 0  # the 16 px block comes from transfer, so the suggestion is base
    channels = [int(c) for c in suggested.split(",")]
    assert "take α = 0" in client.predict(16, suggested, 0, api_name="/set_channels")
    shown = client.predict(3, 0.7, "base", *SWAP16, api_name="/render_blend")
    spec = stylemix.BlendSpec.swap(16).with_channels(16, channels, 0.0)
    expected = stylemix.render.to_uint8(stylemix.render.render_seeds(stylemix.blend(*nv_pair, spec), [3], psi=0.7))[0]
    assert np.array_equal(np.asarray(Image.open(shown[1]).convert("RGB"))[::4, ::4], expected)
    assert "ch16x4" in shown[4]
    with pytest.raises(Exception, match="channels 0–127"):
        client.predict(16, "3, 500", 1, api_name="/set_channels")
    with pytest.raises(Exception, match="whole numbers"):
        client.predict(16, "eyes", 1, api_name="/set_channels")
    client.predict(api_name="/clear_channels")
    assert "ch16" not in client.predict(3, 0.7, "base", *SWAP16, api_name="/render_blend")[4]


def test_animation_download(client):
    from stylemix.ui import ANIMATIONS
    sweep, download = client.predict(list(ANIMATIONS)[1], 2, 0.7, "base", *SWAP16, api_name="/animation")
    with Image.open(download) as gif:
        assert gif.format == "GIF" and gif.n_frames == 2 * 4 - 2  # swaps at 4…32, there and back
        assert gif.size == (256, 256)
    walk = client.predict(list(ANIMATIONS)[3], 2, 0.7, "base", *SWAP16, api_name="/animation")[1]
    with Image.open(walk) as gif:
        assert gif.n_frames == 4 * 8


def test_mix_tab_blends_several_models(tmp_path, nv_pair):
    """Two extra models (from models/) mixed with the pair's transfer: equals blend_many."""
    import shutil
    from gradio_client import Client
    from stylemix.ui import ALL_RESOLUTIONS, MIX_MODELS
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(NV_TRANSFER, models / "toons.pkl")
    shutil.copy(ROSINALITY, models / "faces.pt")
    demo = app.build_demo(NV_BASE, NV_TRANSFER, models_dir=models)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        status = client.predict(["toons.pkl", "faces.pt"], [], api_name="/load_mix")
        assert "with toons.pkl, faces.pt" in str(status)
        rows = [[0] * len(ALL_RESOLUTIONS) for _ in range(MIX_MODELS)]
        rows[0][:3] = [1, 1, 0]          # 4, 8 px from the pair's transfer
        rows[1][3:5] = [0.5, 0.5]        # 32, 64 px half from toons.pkl
        rows[2][2] = 0.25                # 16 px a quarter from faces.pt
        base_img, mix_img, label = client.predict(5, 0.7, *sum(rows, []), api_name="/render_mix")
        res = nv_pair[0].block_resolutions
        specs = [stylemix.ui.spec_from_sliders(res, r, "base") for r in rows[:3]]
        extra = [stylemix.load_generator(models / "toons.pkl"), stylemix.load_generator(models / "faces.pt")]
        mixed = stylemix.blend_many(nv_pair[0], [nv_pair[1], *extra], specs)
        expected = stylemix.render.to_uint8(stylemix.render.render_seeds(mixed, [5], psi=0.7))[0]
        assert np.array_equal(np.asarray(Image.open(mix_img).convert("RGB"))[::4, ::4], expected)
        assert "toons.pkl: res32-0.5_64-0.5" in label
        with pytest.raises(Exception, match="not in the list of choices"):
            client.predict(["../secret.pkl"], [], api_name="/load_mix")
    finally:
        demo.close()


def test_default_pair_exports_say_why_pkl_needs_an_nvidia_base():
    """The shipped pair is safetensors: .pt and .safetensors export, .pkl explains itself."""
    from gradio_client import Client
    demo = app.build_demo(app.DEFAULT_BASE, app.DEFAULT_TRANSFER)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        for endpoint in ("/export_pt", "/export_safetensors"):
            path = client.predict("base", *SWAP16, api_name=endpoint)
            stylemix.check_compatible(stylemix.load_generator(path), stylemix.load_generator(app.DEFAULT_BASE))
        with pytest.raises(Exception, match="needs an NVIDIA .pkl as its template"):
            client.predict("base", *SWAP16, api_name="/export_pkl")
    finally:
        demo.close()
