"""align → project into base → render with the blend, with the latent cached for re-blending."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import stylemix
import stylemix.toonify as toonify_module
from stylemix import BlendSpec
from stylemix.project import ProjectionConfig, render_latent
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


def test_side_by_side(result):
    sheet = result.side_by_side(Image.fromarray(data.astronaut()), size=128)
    assert sheet.size == (4 * 128, 128)


def test_photo_without_face(toonifier):
    with pytest.raises(stylemix.NoFaceError, match="no face found"):
        toonifier.toonify(data.coffee(), BlendSpec.swap(16), CFG)
