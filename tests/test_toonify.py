"""align → project into base → render with the blend, with the latent cached for re-blending."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import stylemix
import stylemix.toonify as toonify_module
from stylemix import BlendSpec
from stylemix.project import ProjectionConfig, image_to_tensor, psnr, render_latent, w_statistics
from stylemix.toonify import Toonifier

CFG = ProjectionConfig(steps=25)


@pytest.fixture(scope="module")
def toonifier(nv_pair):
    return Toonifier(*nv_pair)


@pytest.fixture(scope="module")
def result(toonifier):
    return toonifier.toonify(data.astronaut(), BlendSpec.swap(16), CFG)


def test_pipeline_outputs(result, nv_pair):
    assert result.aligned.size == result.reconstruction.size == result.toon.size == (64, 64)
    rec = np.asarray(result.reconstruction, float)
    toon = np.asarray(result.toon, float)
    assert np.abs(rec - toon).mean() > 5  # the blend renders the same latent differently
    expected = render_latent(nv_pair[0], result.latent)
    got = torch.from_numpy(rec).permute(2, 0, 1) / 127.5 - 1
    assert (got - expected[0].clamp(-1, 1)).abs().max() < 2 / 127.5  # reconstruction = base render


def test_toon_equals_the_blend_render(result, nv_pair):
    B = stylemix.blend(*nv_pair, BlendSpec.swap(16))
    expected = ((render_latent(B, result.latent)[0].clamp(-1, 1) + 1) * 127.5).round()
    assert np.abs(np.asarray(result.toon, float) - expected.permute(1, 2, 0).numpy()).max() <= 1


def test_reblending_does_not_reproject(toonifier, result, monkeypatch):
    calls = []
    real = toonify_module.project
    monkeypatch.setattr(toonify_module, "project", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = toonifier.project(result.aligned, CFG)
    assert again is result.latent and not calls
    new_toon = toonifier.render(again, BlendSpec.swap(8, low="base"))
    assert new_toon.size == (64, 64) and not calls
    toonifier.project(result.aligned, ProjectionConfig(steps=3))  # other settings: projects
    assert calls == [1]


def test_reconstruction_approaches_the_aligned_face(result, nv_pair):
    """The fixture base is random (it cannot draw the astronaut), but 25 steps must still move
    the latent well past the mean w's rendering toward the aligned face (measured: 5.3 → 8.1 dB)."""
    G = nv_pair[0]
    face = image_to_tensor(result.aligned)
    w_avg, _ = w_statistics(G)
    with torch.no_grad():
        mean_face = G.synthesis(w_avg.repeat(1, G.num_ws, 1))
    reconstruction = render_latent(G, result.latent)
    assert psnr(reconstruction, face) >= psnr(mean_face, face) + 1.5
    assert result.latent.history[-1]["loss"] < result.latent.history[0]["loss"]


def test_toon_moves_toward_transfer_as_the_blend_says(toonifier, result, nv_pair):
    """The more resolutions a swap takes from transfer, the closer the toonified face comes to
    the transfer model's drawing of the same latent, and the further from the reconstruction."""
    reconstruction = render_latent(nv_pair[0], result.latent).clamp(-1, 1)
    drawn_by_transfer = render_latent(nv_pair[1], result.latent).clamp(-1, 1)
    to_base, to_transfer = [], []
    for r in (4, 8, 16, 32):
        toon = image_to_tensor(toonifier.render(result.latent, BlendSpec.swap(r)))
        to_base.append((toon - reconstruction).abs().mean().item())
        to_transfer.append((toon - drawn_by_transfer).abs().mean().item())
    assert to_base == sorted(to_base) and to_transfer == sorted(to_transfer, reverse=True)
    assert to_transfer[-1] < to_base[-1] and to_base[0] < to_transfer[0]


def test_side_by_side(result):
    photo = Image.fromarray(data.astronaut())
    sheet = result.side_by_side(photo, size=128)
    assert sheet.size == (4 * 128, 128)
    tiles = [np.asarray(sheet.crop((i * 128, 0, (i + 1) * 128, 128)), float) for i in range(4)]
    # Each tile is its image at 128 px: back at 64 px, it is the image again (up to resampling).
    for tile, image in zip(tiles[1:], (result.aligned, result.reconstruction, result.toon)):
        small = np.asarray(Image.fromarray(tile.astype(np.uint8)).resize((64, 64), Image.BOX), float)
        assert np.abs(small - np.asarray(image.convert("RGB"), float)).mean() < 2
    thumbnail = photo.copy()
    thumbnail.thumbnail((128, 128), Image.LANCZOS)
    assert np.abs(tiles[0] - np.asarray(thumbnail, float)).mean() < 1  # the photo, whole


def test_photo_without_face(toonifier):
    with pytest.raises(stylemix.NoFaceError, match="no face found"):
        toonifier.toonify(data.coffee(), BlendSpec.swap(16), CFG)


def test_lru_keeps_the_most_recent_and_shares_one_value_per_key():
    from stylemix.lru import LRU
    cache = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1          # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and len(cache) == 2
    made = []
    assert cache.get_or_put("d", lambda: made.append(1) or 4) == 4
    assert cache.get_or_put("d", lambda: made.append(1) or 5) == 4 and made == [1]
    assert cache.get_or_put("d", lambda: 6, keep=lambda v: v != 4) == 6


def test_lru_within_a_weight_budget_keeps_the_newest_and_reports_what_it_drops():
    from stylemix.lru import LRU
    dropped = []
    cache = LRU(weigh=len, max_weight=5, on_evict=lambda k, v: dropped.append(k))
    cache.put("a", "xx")
    cache.put("b", "xxx")            # 5 in all: both stay
    assert dropped == [] and len(cache) == 2
    cache.put("c", "x")              # 6: the least recent goes
    assert dropped == ["a"] and "b" in cache and "c" in cache
    cache.put("d", "xxxxxxxx")       # alone over budget: kept, everything else goes
    assert dropped == ["a", "b", "c"] and len(cache) == 1 and cache.get("d")
    assert not cache.pop_if("d", "other") and cache.pop_if("d", cache.get("d")) and len(cache) == 0
    with pytest.raises(ValueError, match="together"):
        LRU(weigh=len)
