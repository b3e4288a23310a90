"""Differentiable augmentation (Zhao et al. 2020, "DiffAugment") for training on few images.

With a few hundred images the discriminator memorises them and the generator collapses.
Applying the same random, differentiable transforms to real and generated images before
D sees them (and letting G's gradient flow through them) keeps D honest without the
transforms leaking into what G produces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import OptionError

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise OptionError(f"unknown augmentation '{unknown[0]}' (choose from {', '.join(POLICIES)})")
    return parts


def _color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    rand = lambda: torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype)  # noqa: E731
    x = x + (rand() - 0.5)                                    # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (rand() * 2) + mean                      # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - mean) * (rand() + 0.5) + mean                    # contrast
    return x


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift by up to ``ratio`` of the size, filling with zeros (reflection would leak)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n,), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n,), device=x.device)
    padded = F.pad(x, [sw, sw, sh, sh])
    rows = (torch.arange(h, device=x.device).view(1, h) + sh - dy.view(n, 1))   # [n, h]
    cols = (torch.arange(w, device=x.device).view(1, w) + sw - dx.view(n, 1))   # [n, w]
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]
    return out.permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random square of ``ratio`` times the size per image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy).abs() <= ch // 2) & ((xs - cx).abs() <= cw // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """Apply each transform of ``policy`` with fresh randomness per image."""
    for name in policy:
        x = _OPS[name](x)
    return x.contiguous()
