"""Does a pair show the paper's effect? Structure from one model, rendering from the other.

For each seed we render base B, transfer T and the two swaps at r: ``lowT`` (resolutions
≤ r from transfer) and ``lowB`` (≤ r from base). Layer swapping works when

- coarse structure follows the low resolutions: lowT is closer to T than lowB is in the
  light/dark layout at 8×8 (grey, standardised per image: head shape, pose, where the eyes
  are — not the global colour, which StyleGAN2 sets mostly in its high-resolution torgb layers);
- rendering follows the high resolutions: lowT is closer to B than lowB is in mean colour
  and in the strength of the high-pass residual per colour channel (image minus its blurred
  self: grain, sharpness), measured wherever things are in the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .blend import BlendSpec, blend
from .networks import Generator
from .render import render_seeds


def coarse(images: torch.Tensor, size: int = 8) -> torch.Tensor:
    """The light/dark layout at ``size``×``size``: grey, area-downsampled, then standardised per
    image, so a global colour or brightness shift (which the high resolutions carry in
    StyleGAN2's skip generator) does not count as structure."""
    grey = F.adaptive_avg_pool2d(images.mean(dim=1, keepdim=True), size).flatten(1)
    grey = grey - grey.mean(dim=1, keepdim=True)
    return grey / (grey.std(dim=1, keepdim=True) + 1e-6)


def high_pass(images: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """The detail a 1/``factor`` downsample loses."""
    low = F.avg_pool2d(images, factor)
    return images - F.interpolate(low, scale_factor=factor, mode="bilinear", align_corners=False)


def rendering(images: torch.Tensor) -> torch.Tensor:
    """How an image is rendered, wherever things are: its mean colour and the RMS of its
    high-pass residual (fine detail, grain, sharpness) per colour channel, in two bands.
    Position-free on purpose: a swap moves the eyes, and edges that moved are structure."""
    bands = [high_pass(images, 2), high_pass(images, 4)]
    return torch.cat([images.mean(dim=[2, 3])] + [b.square().mean(dim=[2, 3]).sqrt() for b in bands], dim=1)


def _distance(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return (a - b).flatten(1).square().mean(1).sqrt().numpy()


@dataclass
class SwapEffect:
    r_swap: int
    seeds: int
    coarse_lowT_to_T: float   # mean RMS distance; smaller = closer
    coarse_lowB_to_T: float
    fine_lowT_to_B: float
    fine_lowB_to_B: float
    coarse_wins: float        # fraction of seeds where lowT is the closer to T in structure
    fine_wins: float          # fraction of seeds where lowT is the closer to B in detail

    @property
    def holds(self) -> bool:
        return self.coarse_lowT_to_T < self.coarse_lowB_to_T and self.fine_lowT_to_B < self.fine_lowB_to_B

    def report(self) -> str:
        return (f"swap at {self.r_swap} px over {self.seeds} seeds: coarse 8x8 distance to transfer "
                f"lowT {self.coarse_lowT_to_T:.4f} vs lowB {self.coarse_lowB_to_T:.4f} "
                f"(lowT closer for {self.coarse_wins:.0%}); rendering distance to base "
                f"lowT {self.fine_lowT_to_B:.4f} vs lowB {self.fine_lowB_to_B:.4f} "
                f"(lowT closer for {self.fine_wins:.0%})")


@torch.no_grad()
def measure_swap_effect(G_base: Generator, G_transfer: Generator, r_swap: int,
                        seeds: list[int], psi: float = 0.7) -> SwapEffect:
    low_t = blend(G_base, G_transfer, BlendSpec.swap(r_swap, low="transfer"))
    low_b = blend(G_base, G_transfer, BlendSpec.swap(r_swap, low="base"))
    B, T, LT, LB = (render_seeds(G, seeds, psi=psi).float().cpu().clamp(-1, 1)
                    for G in (G_base, G_transfer, low_t, low_b))
    c_t, c_b = _distance(coarse(LT), coarse(T)), _distance(coarse(LB), coarse(T))
    f_t, f_b = _distance(rendering(LT), rendering(B)), _distance(rendering(LB), rendering(B))
    return SwapEffect(r_swap, len(seeds), float(c_t.mean()), float(c_b.mean()), float(f_t.mean()),
                      float(f_b.mean()), float((c_t < c_b).mean()), float((f_t < f_b).mean()))
