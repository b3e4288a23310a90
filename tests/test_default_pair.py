"""The default pair that ships in models/: loadable, a real fine-tuned pair, small, and showing
the paper's effect over 32 seeds (layout from the low resolutions, rendering from the high
ones) at the swap points where it holds for this 64 px pair (16 and 32 px; bench/swap_effect.py
prints every resolution)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import app
import stylemix
from stylemix.render import render_seeds
from stylemix.swap_effect import measure_swap_effect

SEEDS = list(range(32))


@pytest.fixture(scope="module")
def pair():
    return stylemix.load_generator(app.DEFAULT_BASE), stylemix.load_generator(app.DEFAULT_TRANSFER)


def test_default_pair_is_small_and_compatible(pair):
    base, transfer = pair
    stylemix.check_compatible(base, transfer)
    assert base.img_resolution >= 64
    for path in (app.DEFAULT_BASE, app.DEFAULT_TRANSFER):
        assert Path(path).stat().st_size < 20 * 2**20


def test_transfer_was_fine_tuned_from_base(pair):
    """Fine-tuning moves the weights, but not so far that they become unrelated."""
    base, transfer = pair
    b = torch.cat([p.flatten() for p in base.synthesis.parameters()])
    t = torch.cat([p.flatten() for p in transfer.synthesis.parameters()])
    cosine = torch.nn.functional.cosine_similarity(b, t, dim=0).item()
    assert 0.5 < cosine < 0.9999


def test_the_pair_renders_varied_images(pair):
    for G in pair:
        images = render_seeds(G, SEEDS[:8], psi=0.7)
        assert torch.isfinite(images).all()
        assert images.std(dim=0).mean() > 0.05  # different seeds, different faces
    base_img, transfer_img = (render_seeds(G, SEEDS[:8], psi=0.7) for G in pair)
    assert (base_img - transfer_img).abs().mean() > 0.05


@pytest.mark.parametrize("r_swap", [16, 32])
def test_swaps_take_structure_low_and_detail_high(pair, r_swap):
    effect = measure_swap_effect(*pair, r_swap, SEEDS)
    assert effect.coarse_lowT_to_T < effect.coarse_lowB_to_T, effect.report()
    assert effect.fine_lowT_to_B < effect.fine_lowB_to_B, effect.report()
    assert np.isfinite([effect.coarse_wins, effect.fine_wins]).all()
