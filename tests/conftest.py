"""Shared test helpers: the reference fixtures beside the repo and small random generators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stylemix import Generator, GeneratorConfig

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
if not (FIXTURES / "nvidia" / "skip64_base.pkl").is_file():
    raise RuntimeError(f"reference fixtures not found at {FIXTURES}: clone the repo beside shared/")

NV_BASE = FIXTURES / "nvidia" / "skip64_base.pkl"
NV_TRANSFER = FIXTURES / "nvidia" / "skip64_transfer.pkl"
ROSINALITY = FIXTURES / "rosinality" / "skip64_base_rosinality.pt"


@pytest.fixture(scope="session")
def renders():
    return dict(np.load(FIXTURES / "nvidia" / "skip64_renders.npz"))


@pytest.fixture(scope="session")
def nv_pair():
    import stylemix
    return stylemix.load_generator(NV_BASE), stylemix.load_generator(NV_TRANSFER)


def random_generator(seed: int = 0, **overrides) -> Generator:
    """A small generator with every parameter random (biases and noise strengths too)."""
    kwargs = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, channel_base=256,
                  channel_max=32, mapping_layers=2)
    kwargs.update(overrides)
    torch.manual_seed(seed)
    G = Generator(GeneratorConfig(**kwargs)).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.normal_()
    return G


def render(G, z, psi=1.0, c=None, **kwargs):
    with torch.no_grad():
        return G.synthesis(G.mapping(z, c, truncation_psi=psi), **kwargs)
