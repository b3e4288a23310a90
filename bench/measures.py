"""Measures for benchmarks and tests, kept out of the package: what the swap does to a pair
(layout from the low resolutions, rendering from the high ones), whether toonify keeps the
person (dlib), and "the same picture up to rounding".

Imported by bench/*.py (which put this folder on sys.path) and by the tests (conftest.py).
"""

# --- the swap's effect ----------------------------------------------------------------------
# Does a pair show the paper's effect? Structure from one model, rendering from the other.
#
# For each seed we render base B, transfer T and the two swaps at r: ``lowT`` (resolutions
# ≤ r from transfer) and ``lowB`` (≤ r from base). Layer swapping works when
#
# - coarse structure follows the low resolutions: lowT is closer to T than lowB is in the
#   light/dark layout at 8×8 (grey, standardised per image: head shape, pose, where the eyes
#   are — not the global colour, which StyleGAN2 sets mostly in its high-resolution torgb layers);
# - rendering follows the high resolutions: lowT is closer to B than lowB is in mean colour
#   and in the strength of the high-pass residual per colour channel (image minus its blurred
#   self: grain, sharpness), measured wherever things are in the image.


from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from stylemix.blend import BlendSpec, blend
from stylemix.networks import Generator
from PIL import Image

from stylemix.identity import distance, face_descriptor
from stylemix.render import render_seeds
from stylemix.train.keep import chroma_layout, layout


def coarse(images: torch.Tensor, size: int = 8) -> torch.Tensor:
    """The light/dark layout at ``size``×``size``: grey, area-downsampled, then standardised per
    image, so a global colour or brightness shift (which the high resolutions carry in
    StyleGAN2's skip generator) does not count as structure (the keep-layout term's measure)."""
    return layout(images, size, eps=1e-6)


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


# --- clean or stained -------------------------------------------------------------------------
# Cartoon art is flat almost everywhere (smooth shading on a plain backdrop), its detail on a few
# edges; grain and colour stains spread over areas. So: the detail of an image's *median pixel*.
LEVELS = 127.5  # [-1, 1] → 8-bit levels


def median_pixel(detail: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] → [N]: the median over pixels of the detail's RMS over channels, in levels."""
    return detail.square().mean(dim=1).sqrt().flatten(1).median(dim=1).values * LEVELS


def grain(images: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] in [-1, 1] → [N]: the median pixel's 1-2 px luma detail."""
    return median_pixel(high_pass(images.mean(dim=1, keepdim=True), 2))


def stains(images: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] in [-1, 1] → [N]: the median pixel's 2-4 px chroma detail."""
    chroma = images - images.mean(dim=1, keepdim=True)
    return median_pixel(high_pass(chroma, 4) - high_pass(chroma, 2))


def blotch(images: torch.Tensor, references: torch.Tensor, cells: int = 8) -> torch.Tensor:
    """[N, 3, H, W] twice, in [-1, 1] → [N]: the largest change of one cell's chroma (its mean
    colour minus its grey, on a ``cells``×``cells`` grid) from the reference, in 8-bit levels.
    A toon against its reconstruction (the same latent, base's rendering): the person's colours
    should survive the swap, and a glowing nose or a stained cheek is one cell gone off."""
    change = (chroma_layout(images, cells) - chroma_layout(references, cells)).square().sum(dim=1).sqrt()
    return change.flatten(1).max(dim=1).values * LEVELS


def toward_transfer(images: torch.Tensor, base_images: torch.Tensor, transfer_images: torch.Tensor,
                    size: int = 32) -> torch.Tensor:
    """[N, 3, H, W] three times, in [-1, 1] → [N]: where each image's light/dark layout at
    ``size``×``size`` (:func:`coarse`) lies between the same latent drawn by base (0) and by the
    transfer (1): d(image, base) / (d(image, base) + d(image, transfer)). A toon's structure:
    0.5 is halfway to the cartoon's head, eyes and mouth."""
    to_base = (coarse(images, size) - coarse(base_images, size)).square().mean(1).sqrt()
    to_transfer = (coarse(images, size) - coarse(transfer_images, size)).square().mean(1).sqrt()
    return to_base / (to_base + to_transfer + 1e-8)


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


def same_picture(a: np.ndarray, b: np.ndarray, share: float = 0.01) -> bool:
    """Whether two uint8 images are one render reached along two float paths, equal but for
    rounding: same shape, no value more than 2 apart, at most ``share`` of the values apart.

    Why: the engine's fast path (kept Σw², fused modulation) and a blended copy of the weights
    sum in different orders; their floats differ by ~1e-6, which flips a handful of values
    sitting on a rounding boundary of :func:`to_uint8` by one level, more or fewer on different
    CPUs.  An image enlarged for the page spreads each flip over the Lanczos kernel's footprint
    (one flipped value of a 16 px render touches 0.17 % of the 256 px image's values) and the
    kernel's overshoot can round it to two levels.  Another blend differs far more."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(diff.max(initial=0)) <= 2 and np.count_nonzero(diff) <= share * diff.size


# --- toonify, measured ------------------------------------------------------------------------


@dataclass
class IdentityRow:
    """One photo through align → project → render: fidelity, and who dlib thinks it is."""
    name: str
    psnr: float               # reconstruction vs aligned photo, dB, at the model's resolution
    ssim: float
    seconds: float            # align + project + both renders
    recon_found: bool         # dlib finds a face in the reconstruction
    toon_found: bool          # … and in the toonified image
    own_distance: float       # reconstruction ↔ its own photo (nan when a face is missing)
    nearest_other: float      # reconstruction ↔ the nearest other photo (nan when none)
    toon_distance: float      # toonified image ↔ its own photo

    @property
    def recognised(self) -> bool:
        """The reconstruction is nearer its own photo than anyone else's."""
        return bool(self.own_distance < self.nearest_other)


def measure_toonify_identity(toonifier, photos: dict[str, Image.Image], spec, config=None,
                             class_idx: int | None = None) -> list[IdentityRow]:
    """Toonify every photo with ``spec`` and score it: PSNR/SSIM of the base model's
    reconstruction against the aligned photo, whether dlib finds the reconstruction and the
    toonified image as faces, and descriptor distances to the photos (see IdentityRow)."""
    from stylemix.project import image_to_tensor, psnr, ssim

    done = []
    for name, photo in photos.items():
        start = time.perf_counter()
        result = toonifier.toonify(photo, spec, config, class_idx=class_idx)
        seconds = time.perf_counter() - start
        channels = toonifier.G_base.img_channels
        a = image_to_tensor(result.aligned, channels=channels)
        b = image_to_tensor(result.reconstruction, channels=channels)
        done.append((name, photo, result, seconds, psnr(b, a), float(ssim(b, a))))
    own = {name: face_descriptor(photo) for name, photo, *_ in done}
    rows = []
    for name, photo, result, seconds, p, s in done:
        rec, toon = face_descriptor(result.reconstruction), face_descriptor(result.toon)
        others = [distance(rec, d) for other, d in own.items()
                  if other != name and d is not None and rec is not None]
        rows.append(IdentityRow(
            name, p, s, seconds, rec is not None, toon is not None,
            distance(rec, own[name]) if rec is not None and own[name] is not None else float("nan"),
            min(others) if others else float("nan"),
            distance(toon, own[name]) if toon is not None and own[name] is not None else float("nan")))
    return rows
