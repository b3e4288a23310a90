"""The app through a running server (gradio_client): every control answers with what the library
computes, a slider move renders once, the parents are cached, bad input gets a one-line reason
(on the page and in the log), and every image offered is at least 256 px, Lanczos, lossless."""

import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import gradio as gr
import stylemix
import app
from measures import same_picture
from stylemix.render import render_seeds, resized, to_uint8
from stylemix.toonify import Toonifier
from stylemix.ui import ALL_RESOLUTIONS, MIX_MODELS, PRESETS, export_blend, spec_from_sliders
from conftest import FIXTURES, NV_BASE, NV_TRANSFER, ROSINALITY, render

SWAP16 = [1, 1, 1, 0, 0, 0, 0, 0, 0]  # one slider per 4…1024 px; ≤ 16 from transfer
HIGH = [0, 0, 0, 1, 1, 0, 0, 0, 0]    # 32 and 64 px from transfer
FIELD = FIXTURES / "field"
ROOT = Path(__file__).resolve().parents[1]


def shown(G, seed, psi=0.7, class_idx=None, size=256) -> np.ndarray:
    """What the page must show for one seed: the library's render, Lanczos-resampled to ≥ 256 px."""
    arr = to_uint8(render_seeds(G, [seed], psi=psi, class_idx=class_idx))[0]
    image = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    return np.asarray(resized(image, max(size, image.width)))


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image)


def serve(*args, **kwargs):
    demo = app.build_demo(*args, **kwargs)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    from gradio_client import Client
    return demo, Client(demo.local_url, verbose=False)


@pytest.fixture(scope="module")
def client():
    demo, client = serve(NV_BASE, NV_TRANSFER)
    yield client
    demo.close()


@pytest.fixture
def render_count(monkeypatch):
    """How many images the page's handlers render (every UI render goes through render_seeds:
    the main image through the render queue's, the panels through the page's own)."""
    import stylemix.render_batch as render_batch
    import stylemix.ui.images as images
    calls = []
    real = images.render_seeds

    def counted(G, seeds, **kwargs):
        calls.append(len(seeds))
        return real(G, seeds, **kwargs)

    monkeypatch.setattr(images, "render_seeds", counted)
    monkeypatch.setattr(render_batch, "render_seeds", counted)
    return calls


def test_page_builds():
    demo = app.build_demo(NV_BASE, NV_TRANSFER)
    assert isinstance(demo, gr.Blocks)
    tabs = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert tabs == ["Blend", "Mix several models", "Toonify"]
    assert not hasattr(demo, "max_upload_mb")


def test_triptych_shows_a_real_blend(nv_pair):
    base, blend, transfer = app.render_triptych(Toonifier(*nv_pair), 1, 0.7, stylemix.BlendSpec.swap(16))
    assert base.shape == blend.shape == transfer.shape == (256, 256, 3) and base.dtype == np.uint8
    assert not same_picture(blend, base) and not same_picture(blend, transfer)
    assert same_picture(blend, shown(stylemix.blend(*nv_pair, stylemix.BlendSpec.swap(16)), 1))


def test_page_explains_a_bad_pair(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a model")
    demo = app.build_demo(bad, NV_TRANSFER)
    text = " ".join(str(getattr(block, "value", "")) for block in demo.blocks.values())
    assert "Cannot load the model pair" in text and "not a model file" in text


def test_the_sliders_route_is_served_by_the_launched_app_before_any_page_loads(client):
    """Registered when the app is built (not by a page's event): a request with no page's
    token gets the route's own one-line answer, not Gradio's 404 page."""
    import urllib.error
    import urllib.request
    from stylemix.ui.preview import ROUTE
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(client.src.rstrip("/") + ROUTE + "?token=nobody&field=alpha-16&value=0.5&n=1")
    assert answer.value.code == 404
    assert answer.value.read().decode() == "this page's session is unknown to the server (reload the page)"


def test_blend_endpoint_equals_the_library(client, nv_pair):
    blend, timing = client.predict(3, 0.7, "base", *SWAP16, api_name="/render_blend")
    B = stylemix.blend(*nv_pair, stylemix.BlendSpec.swap(16))
    assert same_picture(pixels(blend), shown(B, 3))  # the library's render (to rounding), resampled
    assert "ms** on the server" in timing and "render" in timing and "res4-1_8-1_16-1" in timing
    other = client.predict(3, 0.7, "base", *HIGH, api_name="/render_blend")[0]
    assert not same_picture(pixels(other), pixels(blend))


def test_a_slider_move_renders_one_image_and_parents_come_from_the_cache(client, nv_pair, render_count):
    client.predict(11, 0.7, "base", *SWAP16, api_name="/render_blend")
    assert render_count == [1]  # the blend only: no parents, no grid before it
    base, transfer = client.predict(11, 0.7, "base", *SWAP16, api_name="/render_parents")
    assert same_picture(pixels(base), shown(nv_pair[0], 11))
    assert same_picture(pixels(transfer), shown(nv_pair[1], 11))
    assert render_count == [1, 1, 1]
    client.predict(11, 0.7, "base", *HIGH, api_name="/render_blend")
    client.predict(11, 0.7, "base", *HIGH, api_name="/render_parents")  # same seed: nothing new
    assert render_count == [1, 1, 1, 1]
    grid = pixels(client.predict(11, 0.7, "base", *HIGH, api_name="/render_grid"))
    spec = spec_from_sliders(nv_pair[0].block_resolutions, HIGH, "base")
    B = stylemix.blend(*nv_pair, spec)
    assert grid.shape == (128, 4 * 128 + 3 * 2, 3)  # four ≥ 128 px tiles, 2 px gutters
    for i in range(4):
        assert same_picture(grid[:, i * 130: i * 130 + 128], shown(B, 12 + i, size=128))


def test_stale_panels_are_dropped():
    """A panel whose slider state is no longer the session's newest does not render."""
    from stylemix.ui.services import RenderOrder
    order = RenderOrder()
    with order.main("s") as first:
        pass
    assert order.panel_turn("s", first)
    with order.main("s") as second:
        pass
    assert second == first + 1 and not order.panel_turn("s", first) and order.panel_turn("s", second)
    assert order.panel_turn("other session", None)


def test_presets_fill_the_sliders(client):
    assert client.predict(PRESETS[0], 16, 0.5, 0.5, api_name="/preset") == tuple(SWAP16)
    assert client.predict(PRESETS[1], 8, 0.5, 0.5, api_name="/preset")[:5] == (0, 0, 1, 1, 1)
    assert client.predict(PRESETS[2], 8, 0.3, 0.5, api_name="/preset")[:5] == (0.3,) * 5
    # The pair's toonify blend, where the page opens: this pair recommends none, so the paper's
    # swap for its size (64 px: r_swap 8) with the soft edge, whatever r and α the row shows.
    assert client.predict("toonify default", 32, 0.3, 0.5, api_name="/preset")[:5] == (1, 0.75, 0.25, 0, 0)


def test_export_pkl_pt_and_safetensors(client, nv_pair):
    z = torch.from_numpy(np.random.RandomState(0).randn(2, 64).astype(np.float32))
    expected = render(stylemix.blend(*nv_pair, stylemix.BlendSpec.swap(16)), z)
    for endpoint, suffix in (("/export_pkl", ".pkl"), ("/export_safetensors", ".safetensors")):
        path = client.predict("base", *SWAP16, 0, None, api_name=endpoint)
        assert Path(path).name == f"stylemix-res4-1_8-1_16-1{suffix}"  # the whole recipe, not cut
        assert torch.allclose(render(stylemix.load_generator(path), z), expected)
    # This pair's channels (128 at 4 px) are not in rosinality's table: the .pt button is greyed
    # out, and a call through the API gets the reason instead of a file pSp could not load.
    with pytest.raises(Exception, match="no channel_multiplier gives"):
        client.predict("base", *SWAP16, 0, None, api_name="/export_pt")


def test_pkl_export_without_a_pickle_says_what_it_needs_in_the_pages_words(tmp_path):
    G_base = stylemix.load_generator(ROSINALITY)
    G_transfer = stylemix.load_generator(NV_TRANSFER)
    with pytest.raises(stylemix.ExportError, match="choose such a .pkl as the template") as info:
        export_blend(G_base, G_transfer, stylemix.BlendSpec.swap(16), ".pkl")
    assert "--template" not in str(info.value) and "native" not in str(info.value)
    # With a template (the NVIDIA pickle of the same network) the .pkl is written and loads.
    path = export_blend(G_base, G_transfer, stylemix.BlendSpec.swap(16), ".pkl", template=NV_BASE)
    z = torch.from_numpy(np.random.RandomState(1).randn(2, 64).astype(np.float32))
    assert torch.allclose(render(stylemix.load_generator(path), z),
                          render(stylemix.blend(G_base, G_transfer, stylemix.BlendSpec.swap(16)), z), atol=1e-5)


def test_default_pair_offers_a_template_for_pkl_export():
    """The shipped pair is safetensors: .safetensors exports (its channels are not rosinality's,
    so .pt says why not); .pkl asks for a template
    in the page's words and uses one when given."""
    from gradio_client import handle_file
    demo, client = serve(app.DEFAULT_BASE, app.DEFAULT_TRANSFER)
    try:
        path = client.predict("base", *SWAP16, 0, None, api_name="/export_safetensors")
        stylemix.check_compatible(stylemix.load_generator(path), stylemix.load_generator(app.DEFAULT_BASE))
        with pytest.raises(Exception, match="rosinality .pt that its Generator loads"):
            client.predict("base", *SWAP16, 0, None, api_name="/export_pt")
        with pytest.raises(Exception, match="choose such a .pkl as the template, or export .safetensors") as info:
            client.predict("base", *SWAP16, 0, None, api_name="/export_pkl")
        assert "--template" not in str(info.value)
        # A template of another network is refused with the loader's one-line reason.
        with pytest.raises(Exception, match="template"):
            client.predict("base", *SWAP16, 0, handle_file(str(NV_BASE)), api_name="/export_pkl")
        text = " ".join(str(getattr(b, "value", "")) for b in demo.blocks.values())
        assert "**.pkl export** writes the blend into an existing NVIDIA or TensorFlow .pkl" in text
    finally:
        demo.close()


def astronaut(tmp_path) -> Path:
    """A real photo with one face, small enough to align quickly."""
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).resize((256, 256), Image.LANCZOS).save(photo)
    return photo


def test_toonify_tab_through_the_server(client, nv_pair, tmp_path):
    from gradio_client import handle_file
    photo = astronaut(tmp_path)
    aligned = client.predict(handle_file(str(photo)), "base", *SWAP16, api_name="/align_photo")[0]
    assert pixels(aligned).shape == (256, 256, 3)
    rec, toon, download = client.predict(20, "base", *SWAP16, api_name="/run_toonify")
    toon_img = pixels(toon)
    assert toon_img.shape == (256, 256, 3)
    assert Path(download).name == "toonified-res4-1_8-1_16-1.png"
    assert np.array_equal(pixels(download), toon_img)  # the download is what the page shows: 256 px
    # Moving the sliders re-renders this session's projected face, without projecting again.
    toon2, download2 = client.predict("base", *HIGH, api_name="/rerender_toon")
    assert "res32-1_64-1" in download2
    assert not same_picture(pixels(toon2), toon_img)


def test_user_errors_are_one_line_on_the_page_and_in_the_log(client, tmp_path, caplog, capfd):
    from gradio_client import handle_file
    coffee = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(coffee)
    fake = tmp_path / "notes.png"
    fake.write_text("a text file renamed .png")
    cli = subprocess.run([sys.executable, "-m", "stylemix", "align", str(fake), "-o", str(tmp_path / "o.png")],
                         capture_output=True, text=True, cwd=ROOT)
    # the CLI names the file the user typed; the page leaves names out (they are the server's)
    cli_reason = cli.stderr.strip().removeprefix("stylemix: error: notes.png: ")
    assert cli.returncode == 1 and cli_reason and not cli_reason.startswith("stylemix")
    with caplog.at_level(logging.WARNING, logger="stylemix.app"):
        with pytest.raises(Exception, match="no face found"):
            client.predict(handle_file(str(coffee)), "base", *SWAP16, api_name="/align_photo")
        with pytest.raises(Exception, match=re.escape(cli_reason)) as info:
            client.predict(handle_file(str(fake)), "base", *SWAP16, api_name="/align_photo")
        assert str(info.value).strip() == cli_reason  # the CLI's very words, after the name
        with pytest.raises(Exception, match="whole numbers"):
            client.predict(16, "eyes", 1, api_name="/set_channels")
    lines = [r.getMessage() for r in caplog.records if r.name == "stylemix.app"]
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert "no face found" in lines[0] and cli_reason in lines[1] and "whole numbers" in lines[2]
    assert "Traceback" not in capfd.readouterr().err


# -- model picker and uploads ------------------------------------------------------------------

def test_pair_helpers(tmp_path, monkeypatch):
    from stylemix.formats import common
    from stylemix.ui import pairs
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
        check_upload(str(models / "base.pkl"), 2 ** 20)
    with pytest.raises(stylemix.StylemixError, match="'notes.txt' is not a model file"):
        check_upload(str(models / "notes.txt"), 2 ** 30)
    # Each file is read once: its loader hashes it; the cache never hashes it again.
    hashed = []
    real = common.file_sha256
    monkeypatch.setattr(pairs, "file_sha256", lambda p: hashed.append(p) or real(p))
    cache = PairCache(max_bytes=1)  # room for one pair only
    key1, t1 = cache.load(NV_BASE, NV_TRANSFER)
    assert hashed == [] and key1 == (real(NV_BASE), real(NV_TRANSFER))
    assert cache.load(NV_BASE, NV_TRANSFER)[1] is t1  # the same files: nothing loaded again
    assert cache.load(models / "base.pkl", NV_TRANSFER)[1] is t1  # same content: same engine
    key2, _ = cache.load(ROSINALITY, NV_TRANSFER)
    assert len(cache) == 1 and cache.get(key1) is None and cache.get(key2) is not None
    assert hashed == []


def test_models_picked_and_uploaded(tmp_path):
    from gradio_client import handle_file
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(NV_BASE, models / "faces.pkl")
    shutil.copy(NV_TRANSFER, models / "toons.pkl")
    demo, client = serve(tmp_path / "none.pkl", tmp_path / "none.pkl", models_dir=models, max_upload_mb=64)
    try:
        # No default pair: the page explains, and nothing renders until a pair is loaded.
        text = " ".join(str(getattr(b, "value", "")) for b in demo.blocks.values())
        assert "Cannot load the model pair: no such model file: none.pkl" in text
        assert client.predict(0, 0.7, "base", *SWAP16, api_name="/render_blend")[0] is None
        out = client.predict("faces.pkl", "toons.pkl", api_name="/load_models")
        assert "Loaded faces.pkl + toons.pkl (64 px)" in out[0]
        assert client.predict(0, 0.7, "base", *SWAP16, api_name="/render_blend")[0] is not None
        # A name that is not offered is refused (by Gradio's own choice check, and by
        # resolve_model behind it: test_pair_helpers); the current pair stays loaded.
        with pytest.raises(Exception, match="not in the list of choices"):
            client.predict("../models/faces.pkl", "/etc/passwd", api_name="/load_models")
        assert client.predict(0, 0.7, "base", *SWAP16, api_name="/render_blend")[0] is not None
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
        assert client.predict(0, 0.7, "base", *SWAP16, api_name="/render_blend")[0] is not None
        evil = tmp_path / "evil.pkl"
        import pickle

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
    blend, timing = client.predict(3, 0.7, "base", *SWAP16, api_name="/render_blend")
    spec = stylemix.BlendSpec.swap(16).with_channels(16, channels, 0.0)
    assert same_picture(pixels(blend), shown(stylemix.blend(*nv_pair, spec), 3))
    assert "ch16x4" in timing
    with pytest.raises(Exception, match="channels 0–127"):
        client.predict(16, "3, 500", 1, api_name="/set_channels")
    client.predict(api_name="/clear_channels")
    assert "ch16" not in client.predict(3, 0.7, "base", *SWAP16, api_name="/render_blend")[1]


def test_animation_download(client):
    from stylemix.ui import ANIMATIONS
    sweep, download = client.predict(list(ANIMATIONS)[1], 2, 0.7, "base", *SWAP16, api_name="/animation")
    with Image.open(download) as gif:
        assert gif.format == "GIF" and gif.n_frames == 2 * 4 - 2  # swaps at 4…32, there and back
        assert gif.size == (256, 256)
    walk = client.predict(list(ANIMATIONS)[3], 2, 0.7, "base", *SWAP16, api_name="/animation")[1]
    with Image.open(walk) as gif:
        assert gif.n_frames == 4 * 8


def mix_row_values(demo) -> list[list[float]]:
    """The Mix tab's slider rows as the page opens (label 'transfer: 4 px', 'model 2: 4 px', …)."""
    rows = {}
    for block in demo.blocks.values():
        if isinstance(block, gr.Slider) and ": " in str(block.label) and str(block.label).endswith(" px"):
            name, res = block.label.rsplit(": ", 1)
            rows.setdefault(name, []).append(block.value)
    return list(rows.values())


def test_mix_tab_opens_like_the_main_sliders_and_blends_several_models(tmp_path, nv_pair):
    """Its first row starts as the main sliders; two extra models (from models/) mixed with the
    pair's transfer equal blend_many."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(NV_TRANSFER, models / "toons.pkl")
    shutil.copy(ROSINALITY, models / "faces.pt")
    demo, client = serve(NV_BASE, NV_TRANSFER, models_dir=models)
    try:
        rows = mix_row_values(demo)
        main = [b.value for b in demo.blocks.values() if isinstance(b, gr.Slider)
                and str(getattr(b, "elem_id", "")).startswith("alpha-")]
        # A 64 px pair opens on toonify's default for its size (the swap at 8 px with a soft
        # edge: the 8 px block at 0.75, the 16 px one at 0.25), in both places.
        assert len(rows) == MIX_MODELS and rows[0] == main == [1.0, 0.75, 0.25] + [0.0] * 6
        assert stylemix.toonify.toonify_r_swap(nv_pair[0]) == 8
        base_img, mix_img, label = client.predict(5, 0.7, *sum([SWAP16] + [[0] * 9] * 3, []), api_name="/render_mix")
        assert same_picture(pixels(mix_img), shown(stylemix.blend(*nv_pair, stylemix.BlendSpec.swap(16)), 5))
        status = client.predict(["toons.pkl", "faces.pt"], [], api_name="/load_mix")
        assert "with toons.pkl, faces.pt" in str(status)
        rows = [[0] * len(ALL_RESOLUTIONS) for _ in range(MIX_MODELS)]
        rows[0][:3] = [1, 1, 0]          # 4, 8 px from the pair's transfer
        rows[1][3:5] = [0.5, 0.5]        # 32, 64 px half from toons.pkl
        rows[2][2] = 0.25                # 16 px a quarter from faces.pt
        base_img, mix_img, label = client.predict(5, 0.7, *sum(rows, []), api_name="/render_mix")
        res = nv_pair[0].block_resolutions
        specs = [spec_from_sliders(res, r, "base") for r in rows[:3]]
        extra = [stylemix.load_generator(models / "toons.pkl"), stylemix.load_generator(models / "faces.pt")]
        mixed = stylemix.blend_many(nv_pair[0], [nv_pair[1], *extra], specs)
        assert same_picture(pixels(mix_img), shown(mixed, 5))
        assert same_picture(pixels(base_img), shown(nv_pair[0], 5))
        assert "toons.pkl: res32-0.5_64-0.5" in label
        with pytest.raises(Exception, match="not in the list of choices"):
            client.predict(["../secret.pkl"], [], api_name="/load_mix")
    finally:
        demo.close()


def test_mix_offers_the_models_besides_the_loaded_pair(tmp_path):
    """models/ holding only the loaded pair offers nothing to mix, and says so; a third model is
    offered; the grid of a small model follows every change."""
    models = tmp_path / "models"
    models.mkdir()
    for name in ("base.safetensors", "transfer.safetensors"):
        shutil.copy(Path(app.DEFAULT_BASE).parent / name, models / name)
    demo = app.build_demo(models / "base.safetensors", models / "transfer.safetensors", models_dir=models)
    pick = [b for b in demo.blocks.values() if isinstance(b, gr.Dropdown) and "more models" in str(b.label)][0]
    assert pick.choices == [] and "it holds only this pair" in pick.label
    follows = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "grid-follows"][0]
    assert follows.value is True  # 64 px: four small renders after each change
    shutil.copy(ROSINALITY, models / "faces.pt")
    demo = app.build_demo(models / "base.safetensors", models / "transfer.safetensors", models_dir=models)
    pick = [b for b in demo.blocks.values() if isinstance(b, gr.Dropdown) and "more models" in str(b.label)][0]
    assert [c[0] for c in pick.choices] == ["faces.pt"] and "1 besides this pair" in pick.label
    # A 256 px pair: the grid waits to be asked for (its four renders would hold up slider moves).
    from conftest import random_generator
    big = [random_generator(seed, img_resolution=256, channel_base=512, channel_max=8) for seed in (0, 1)]
    for G, name in zip(big, ("b256.safetensors", "t256.safetensors")):
        stylemix.save(G, tmp_path / name)
    demo = app.build_demo(tmp_path / "b256.safetensors", tmp_path / "t256.safetensors", models_dir=models)
    follows = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "grid-follows"][0]
    assert follows.value is False


# -- conditional and greyscale pairs (field fixtures) ------------------------------------------

def test_conditional_pair_has_a_class_picker_used_by_every_render(tmp_path):
    from gradio_client import handle_file
    base, transfer = FIELD / "cond16_base.pkl", FIELD / "cond16_transfer.pkl"
    G_base, G_transfer = stylemix.load_generator(base), stylemix.load_generator(transfer)
    demo, client = serve(base, transfer)
    try:
        picker = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "class-pick"][0]
        assert picker.visible and G_base.c_dim == 4 and picker.label.startswith("class (0–3")
        swap8 = [1, 1, 0, 0, 0, 0, 0, 0, 0]
        B = stylemix.blend(G_base, G_transfer, stylemix.BlendSpec.swap(8))
        images = {}
        for c in (0, 2):
            blend = client.predict(1, 0.7, "base", *swap8, c, api_name="/render_blend")[0]
            assert same_picture(pixels(blend), shown(B, 1, class_idx=c))
            images[c] = pixels(blend)
            base_img, transfer_img = client.predict(1, 0.7, "base", *swap8, c, api_name="/render_parents")
            assert same_picture(pixels(base_img), shown(G_base, 1, class_idx=c))
            assert same_picture(pixels(transfer_img), shown(G_transfer, 1, class_idx=c))
            grid = pixels(client.predict(1, 0.7, "base", *swap8, c, api_name="/render_grid"))
            assert same_picture(grid[:, :128], shown(B, 2, class_idx=c, size=128))
            mix = client.predict(1, 0.7, *swap8, *[0] * 27, c, api_name="/render_mix")[1]
            assert same_picture(pixels(mix), images[c])
        assert not same_picture(images[0], images[2])  # the class changes the picture
        with pytest.raises(Exception, match="class 7 is out of range: this model has 4 classes, 0 to 3"):
            client.predict(1, 0.7, "base", *swap8, 7, api_name="/render_blend")
        table = client.predict(8, "whole image", 1, 0.7, "base", *swap8, 2, api_name="/rank_channels")[0]
        assert "| channel | change |" in table
        gif = client.predict("walk through 4 seeds with this blend", 1, 0.7, "base", *swap8, 2,
                             api_name="/animation")[1]
        assert Image.open(gif).n_frames == 32
        client.predict(handle_file(str(astronaut(tmp_path))), "base", *swap8, 2, api_name="/align_photo")
        toon = client.predict(20, "base", *swap8, 2, api_name="/run_toonify")[1]
        assert pixels(toon).shape == (256, 256, 3)
    finally:
        demo.close()


def test_greyscale_pair_is_shown_in_grey(tmp_path):
    from gradio_client import handle_file
    base, transfer = FIELD / "gray32_base.pkl", FIELD / "gray32_transfer.pkl"
    G_base, G_transfer = stylemix.load_generator(base), stylemix.load_generator(transfer)
    demo, client = serve(base, transfer)
    try:
        swap8 = [1, 1, 0, 0, 0, 0, 0, 0, 0]
        blend = client.predict(4, 0.7, "base", *swap8, api_name="/render_blend")[0]
        with Image.open(blend) as image:
            assert image.mode == "L" and image.size == (256, 256)  # one grey channel, not a tint
        assert same_picture(pixels(blend), shown(stylemix.blend(G_base, G_transfer, stylemix.BlendSpec.swap(8)), 4))
        base_img = client.predict(4, 0.7, "base", *swap8, api_name="/render_parents")[0]
        assert Image.open(base_img).mode == "L"
        # Toonify: the photo is RGB; the model's reconstruction and toon come back grey.
        aligned = client.predict(handle_file(str(astronaut(tmp_path))), "base", *swap8, api_name="/align_photo")[0]
        assert Image.open(aligned).mode == "RGB"
        rec, toon, download = client.predict(20, "base", *swap8, api_name="/run_toonify")
        for path in (rec, toon, download):
            with Image.open(path) as image:
                assert image.mode == "L" and image.size == (256, 256)
    finally:
        demo.close()


def test_start_banner_names_the_apps_share_option(monkeypatch, capsys):
    """`python app.py` prints its own banner: the URL and `--share`, not Gradio's "share=True"."""
    monkeypatch.setattr(gr.Blocks, "block_thread", lambda self: None)
    monkeypatch.setattr(sys, "argv", ["app.py", "--base", str(NV_BASE), "--transfer", str(NV_TRANSFER),
                                      "--port", str(free_port())])
    try:
        app.main()
    finally:
        gr.close_all()
    text = capsys.readouterr().out
    assert "stylemix app running on http://127.0.0.1:" in text and "add --share for a public link" in text
    assert "share=True" not in text


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("required", [False, True])
def test_the_suite_without_chromium_skips_its_browser_tests_unless_ci_requires_them(required):
    """The README's test command works on a machine without chromium: the browser tests skip,
    naming the command that installs it; .ci/run (STYLEMIX_REQUIRE_BROWSER=1) fails instead."""
    env = dict(os.environ, STYLEMIX_CHROMIUM="/nonexistent/chromium", OMP_NUM_THREADS="1")
    env.pop("STYLEMIX_REQUIRE_BROWSER", None)
    if required:
        env["STYLEMIX_REQUIRE_BROWSER"] = "1"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                          "tests/test_browser.py"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert "apt-get install -y chromium" in run.stdout
    if required:
        assert run.returncode == 2 and "STYLEMIX_REQUIRE_BROWSER=1" in run.stdout  # collection error
    else:  # skipped, no error (alone, pytest's code is 5, "no tests ran"; in the suite it is 0)
        assert run.returncode == 5 and "1 skipped" in run.stdout and "error" not in run.stdout.lower()


def test_one_sessions_panels_do_not_wait_on_another_sessions_render():
    import threading
    import time as _time
    from stylemix.ui.services import RenderOrder
    order = RenderOrder()
    order.GRACE_S = 0.0
    release = threading.Event()

    def busy_visitor():
        with order.main("busy"):
            release.wait(5)
    thread = threading.Thread(target=busy_visitor)
    thread.start()
    _time.sleep(0.05)
    with order.main("calm") as ticket:
        pass
    turns = []
    panel = threading.Thread(target=lambda: turns.append(order.panel_turn("calm", ticket)))
    panel.start()
    panel.join(timeout=4)
    assert turns == [True] and not release.is_set()  # its turn came while "busy" was still rendering
    release.set()
    thread.join()


def test_the_same_picture_twice_is_two_files_and_neither_is_rewritten(tmp_path):
    """A still webcam or a slider moved back sends the same picture again. Gradio writes an
    array under a name made from its bytes and rewrites that file while a browser may still
    read it (a broken image on the page: CI saw it); a path of our own is never rewritten."""
    from stylemix.ui.images import ShownFiles
    files = ShownFiles(tmp_path, keep=3)
    picture = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    first = Path(files.png(picture, "blend.png"))
    kept = first.read_bytes()
    second = Path(files.png(picture, "blend.png"))
    assert first != second and first.read_bytes() == kept
    assert np.array_equal(np.asarray(Image.open(second)), picture)  # lossless
    live = Path(files.jpeg(picture[..., :1], "live.jpg"))   # greyscale models: one channel
    assert Image.open(live).mode == "L"
    files.png(picture, "d.png")
    assert not first.exists() and second.exists()  # the newest `keep` files stay



def test_the_toonify_tab_streams_the_encoding_then_ends_on_the_clis_refinement(tmp_path):
    """With the shipped encoder: the encoding at once, refined latents while the steps run, and
    last the very latent `stylemix toonify` finds (one schedule of N steps, not restarts)."""
    from gradio_client import handle_file
    from stylemix.align import align
    from stylemix.default_pair import default_encoder
    from stylemix.encoder import load_encoder
    from stylemix.toonify import refinement_config
    from stylemix.ui import spec_from_sliders
    from stylemix.ui.images import shown as page_shown
    demo, client = serve(app.DEFAULT_BASE, app.DEFAULT_TRANSFER)
    try:
        photo = astronaut(tmp_path)
        sliders = [1, 1, 1, 1, 0, 0, 0, 0, 0]  # res4-1_8-1_16-1_32-1, the default pair's toonify blend
        client.predict(handle_file(str(photo)), "base", *sliders, api_name="/align_photo")
        job = client.submit(20, "base", *sliders, api_name="/run_toonify")
        job.result()
        toons = [pixels(out[1]) for out in job.outputs()]
    finally:
        demo.close()
    G_base, G_transfer = stylemix.load_generator(app.DEFAULT_BASE), stylemix.load_generator(app.DEFAULT_TRANSFER)
    pair = Toonifier(G_base, G_transfer, encoder=load_encoder(default_encoder(), base=G_base))
    face = align(photo, output_size=G_base.img_resolution)[0].image
    spec = spec_from_sliders(G_base.block_resolutions, sliders, "base")
    encoded, refined = (pair.project(face, refinement_config(n), init="encoder") for n in (0, 20))
    first, last = (page_shown(pair.render_toon(latent, spec)) for latent in (encoded, refined))
    assert len(toons) >= 2 and not same_picture(first, last)
    assert same_picture(toons[0], first)    # the encoder's result first
    assert same_picture(toons[-1], last)    # and last what the CLI's 20 steps give (its toon_latent)
    assert not same_picture(toons[-1], page_shown(pair.render(refined, spec)))   # not the refined latent itself
