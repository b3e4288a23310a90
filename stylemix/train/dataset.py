"""A folder of images as one in-memory uint8 tensor: small datasets are the point.

The paper fine-tunes on a few hundred images; holding them decoded in memory keeps the
training loop free of I/O. Every file is opened with Pillow under a pixel limit, so a
stray non-image or a decompression bomb is named and skipped, never fatal mid-run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import StylemixError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
MAX_PIXELS = 64_000_000


class DatasetError(StylemixError, ValueError):
    """The training folder cannot be used (missing, empty, no readable images)."""


def _load_square(path: Path, resolution: int) -> np.ndarray:
    with Image.open(path) as im:
        if im.width * im.height > MAX_PIXELS:
            raise DatasetError(f"{path.name} has {im.width}x{im.height} pixels, over the limit")
        if im.mode in ("RGBA", "LA", "P"):
            rgba = im.convert("RGBA")
            im = Image.new("RGB", rgba.size, (255, 255, 255))
            im.paste(rgba, mask=rgba.getchannel("A"))
        else:
            im = im.convert("RGB")
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        im = im.crop((left, top, left + side, top + side))
        if side != resolution:
            im = im.resize((resolution, resolution), Image.LANCZOS)
        return np.asarray(im, dtype=np.uint8)


class ImageFolder:
    """Images of a folder (sorted by name), centre-cropped square and resized to ``resolution``.

    ``images`` is uint8 [N, 3, R, R]; ``skipped`` lists (file name, reason) for files that
    could not be used. Transparent images are composited on white.
    """

    def __init__(self, folder: str | Path, resolution: int):
        folder = Path(folder)
        if not folder.is_dir():
            raise DatasetError(f"no such folder: {folder}")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        arrays, self.skipped = [], []
        for path in files:
            try:
                arrays.append(_load_square(path, resolution))
            except (UnidentifiedImageError, OSError, DatasetError, Image.DecompressionBombError) as exc:
                self.skipped.append((path.name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        if not arrays:
            raise DatasetError(f"none of the {len(files)} files in {folder} is a readable image")
        self.folder, self.resolution = folder, resolution
        self.images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, size: int, generator: torch.Generator, xflip: bool = True) -> torch.Tensor:
        """A random float batch in [-1, 1], horizontally flipped at random when ``xflip``."""
        idx = torch.randint(len(self.images), (size,), generator=generator)
        x = self.images[idx].float().div(127.5).sub(1)
        if xflip:
            flip = torch.rand(size, generator=generator) < 0.5
            x[flip] = x[flip].flip(-1)
        return x

