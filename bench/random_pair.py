"""The benches' stand-in for a real pair: a seeded random generator and a "fine-tuned" copy of
it (every parameter nudged by N(0, 0.01)), so speed figures need no downloaded models."""

from __future__ import annotations

import copy

import torch

import stylemix


def random_pair(cfg: stylemix.GeneratorConfig, seed: int = 0):
    """(base, transfer) in eval mode without gradients, on the CPU."""
    torch.manual_seed(seed)
    base = stylemix.Generator(cfg).eval().requires_grad_(False)
    transfer = copy.deepcopy(base)
    with torch.no_grad():
        for p in transfer.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return base, transfer
