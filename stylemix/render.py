"""Seeds → latents → images, the way the StyleGAN tools do it, plus PNG and grid writing."""

from __future__ import annotations

import math
import operator
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import StylemixError
from .io import atomic_write
from .networks import Generator


def parse_seeds(text: str) -> list[int]:
    """'0-7', '1,5,9' or '0-3,10' → a list of seeds."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise StylemixError(f"bad seed list '{text}': use forms like 0-7 or 1,5,9")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi - lo > 100_000:
            raise StylemixError(f"bad seed range '{part}'")
        seeds.extend(range(lo, hi + 1))
    return seeds


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """NVIDIA's convention (``RandomState(seed).randn(1, z_dim)``), so seeds match their tools."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).float()


def num_classes(G: Generator) -> int:
    """How many classes a class-conditional generator renders (its c_dim); 0 when it takes none."""
    return int(G.c_dim)


def check_class(G: Generator, class_idx: int | None) -> int | None:
    """The class to render ``G`` with: required (0 … c_dim − 1) for a conditional model,
    ignored (None) for an unconditional one.  Raises StylemixError naming the class count."""
    if not G.c_dim:
        return None
    if class_idx is None:
        raise StylemixError(f"this model is class-conditional ({G.c_dim} classes): choose a class "
                            f"with --class N, N from 0 to {G.c_dim - 1}")
    try:
        index = operator.index(class_idx)  # ints, numpy ints; not floats or bools' lookalikes
    except TypeError:
        index = None
    if index is None or isinstance(class_idx, bool) or not 0 <= index < G.c_dim:
        raise StylemixError(f"class {class_idx} is out of range: this model has {G.c_dim} classes, "
                            f"0 to {G.c_dim - 1}")
    return index


def class_vector(G: Generator, class_idx: int | None, batch: int) -> torch.Tensor | None:
    """The one-hot label ``c`` (batch, c_dim) NVIDIA's conditional mapping takes, or None for an
    unconditional model; on the generator's device."""
    class_idx = check_class(G, class_idx)
    if class_idx is None:
        return None
    c = torch.zeros([batch, G.c_dim], device=G.mapping.w_avg.device)
    c[:, class_idx] = 1
    return c


MIN_SAVED_SIZE = 256  # px: smaller models are enlarged to this when their images are saved


def saved_size(native: int, size: int | None = None) -> int:
    """The side of a saved image: ``size`` when given (0 = the model's own), else the model's
    size, enlarged to at least MIN_SAVED_SIZE."""
    if size is None:
        return max(native, MIN_SAVED_SIZE)
    if size < 0:
        raise StylemixError(f"image size must be ≥ 0 px (0 = the model's own size), not {size}")
    return size or native


def resized(image: Image.Image, size: int) -> Image.Image:
    """``image`` resampled to ``size`` px high with a Lanczos filter, its width keeping the aspect
    (``size``×``size`` for square models; unchanged if it already is that size)."""
    width = max(1, round(image.width * size / image.height))
    if image.size == (width, size):
        return image
    return image.resize((width, size), Image.LANCZOS)


@torch.no_grad()
def render_seeds(G: Generator, seeds: list[int], psi: float = 1.0, cutoff: int | None = None,
                 noise_mode: str = "const", class_idx: int | None = None) -> torch.Tensor:
    """Images (N, C, H, W) in about [-1, 1] for the given seeds."""
    device = G.mapping.w_avg.device
    z = torch.cat([seed_to_z(s, G.z_dim) for s in seeds]).to(device)
    ws = G.mapping(z, class_vector(G, class_idx, len(seeds)), truncation_psi=psi,
                   truncation_cutoff=cutoff)
    return G.synthesis(ws, noise_mode=noise_mode)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] → (N, H, W, C) uint8."""
    x = (images.detach().float().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def to_pil(array: np.ndarray, scale: int = 1) -> Image.Image:
    """An HWC uint8 array as a PIL image, enlarged with nearest-neighbour (keeps pixels crisp)."""
    img = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def make_grid(arrays: np.ndarray, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W, C) uint8 images into one image with a thin white gutter."""
    n, h, w, c = arrays.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * h + (rows - 1) * pad, columns * w + (columns - 1) * pad, c), 255, np.uint8)
    for i, img in enumerate(arrays):
        r, col = divmod(i, columns)
        grid[r * (h + pad): r * (h + pad) + h, col * (w + pad): col * (w + pad) + w] = img
    return grid


def save_image(image: Image.Image, path: str | Path) -> None:
    """Write a PIL image as PNG, atomically (a reader never sees half a file)."""
    with atomic_write(path) as tmp:
        image.save(tmp, format="PNG")


def save_png(array: np.ndarray, path: str | Path, scale: int = 1, size: int | None = None) -> None:
    """Write an HWC uint8 array as PNG (greyscale for one channel), enlarged by ``scale``
    (nearest-neighbour) or resampled to ``size`` px (Lanczos)."""
    image = to_pil(array, scale)
    save_image(resized(image, size) if size else image, path)
