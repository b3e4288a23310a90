"""Keep terms for a two-phase fine-tune: pull what one phase must not learn back to the model
the phase started from, sample by sample (same w, same layer swap's two sides).

A layer swap at r_swap takes *layout* from the transfer's low blocks and *rendering* from the
base's high ones. Freezing blocks decides where a change can be made, but not what kind of
change: low blocks frozen-high still shift a sample's colour (the skip generator's low toRGB
layers paint it), and high blocks freed over frozen low ones still move the eyes. So:

- ``keep_colour`` (phase 1, structure): each sample's colour stays the reference's — its mean
  colour, and the chroma (colour minus grey) of each cell of an 8×8 grid, so neither a tint nor
  a local colour stain (a glowing nose) is learnt low; light and dark stay free (a finer grid,
  ``chroma_size``, also holds small fringes: 32 cells at 128 px are 4 px each);
- ``keep_layout`` (phase 2, rendering): each sample's 16×16 light/dark layout stays the
  reference's (grey, area-downsampled, standardised per image: brightness and contrast are
  rendering and are free to change).

Both are squared distances per sample, averaged over the batch, images in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LAYOUT_SIZE = 16
CHROMA_SIZE = 8


def mean_colour(images: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] → [N, 3]: each image's mean colour."""
    return images.mean(dim=(2, 3))


def chroma_layout(images: torch.Tensor, size: int = CHROMA_SIZE) -> torch.Tensor:
    """[N, 3, H, W] → [N, 3, size, size]: each cell's mean colour minus its grey."""
    cells = F.adaptive_avg_pool2d(images, size)
    return cells - cells.mean(dim=1, keepdim=True)


def layout(images: torch.Tensor, size: int = LAYOUT_SIZE, eps: float = 1e-4) -> torch.Tensor:
    """[N, C, H, W] → [N, size²]: the standardised grey layout at ``size``×``size`` (``eps``
    keeps a blank image's noise from being blown up; bench/measures.coarse is this at 8×8)."""
    grey = F.adaptive_avg_pool2d(images.mean(dim=1, keepdim=True), size).flatten(1)
    grey = grey - grey.mean(dim=1, keepdim=True)
    return grey / (grey.std(dim=1, keepdim=True) + eps)


def keep_loss(images: torch.Tensor, reference: torch.Tensor, colour: float = 0.0,
              layout_weight: float = 0.0, chroma_size: int = CHROMA_SIZE) -> tuple[torch.Tensor, dict[str, float]]:
    """(weighted loss, {"keep_colour": …, "keep_layout": …} unweighted) of ``images`` against
    ``reference`` (the same latents through the reference generator), both [N, 3, H, W];
    ``chroma_size``: the chroma grid's cells per side."""
    loss, stats = images.new_zeros(()), {}
    if colour:
        term = ((mean_colour(images) - mean_colour(reference)).square().sum(dim=1).mean()
                + (chroma_layout(images, chroma_size) - chroma_layout(reference, chroma_size)).square().sum(dim=1).mean())
        loss, stats["keep_colour"] = loss + colour * term, term.item()
    if layout_weight:
        term = (layout(images) - layout(reference)).square().mean(dim=1).mean()
        loss, stats["keep_layout"] = loss + layout_weight * term, term.item()
    return loss, stats
