"""Training data held in memory: a folder of images, and teacher pairs (w, image).

The paper fine-tunes on a few hundred images; holding them decoded in memory keeps the
training loop free of I/O. Every file is opened with Pillow under a pixel limit, so a
stray non-image or a decompression bomb is named and skipped, never fatal mid-run.

Teacher pairs are stored by ``tools/build_ffhq_teacher.py`` as ``chunk_*.npz`` files (``w``
(N, w_dim) float32, ``img`` (N, C, R, R) uint8): distillation trains on them, the encoder
learns from them, and their held-out split scores both.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from ..errors import StylemixError
from ..io import first_line

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
                self.skipped.append((path.name, first_line(exc)))
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


def box_downsample(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """(N, C, H, H) → (N, C, R, R) by averaging each (H/R)² block: the box filter the pairs
    were made with, so downsampling composes exactly."""
    size = images.shape[-1]
    if size == resolution:
        return images
    if size < resolution:
        raise DatasetError(f"pairs are {size} px, smaller than the {resolution} px student: "
                           f"build them at {resolution} px or more (tools/build_ffhq_teacher.py --res)")
    if size % resolution:
        raise DatasetError(f"pairs are {size} px, which does not box-downsample to {resolution} px")
    return F.avg_pool2d(images, size // resolution)


class TeacherPairs:
    """Every ``chunk_*.npz`` of a folder: ``w`` (N, w_dim) float32 and ``img`` uint8 (N, C, R, R)
    at ``resolution`` (box-downsampled on load when stored larger). ``refresh`` adds chunks
    written since the last look, so training can start while the data builder runs."""

    def __init__(self, folder: str | os.PathLike, resolution: int):
        self.folder, self.resolution = Path(folder), int(resolution)
        if not self.folder.is_dir():
            raise DatasetError(f"no such folder of teacher pairs: {self.folder}")
        self._loaded: list[str] = []
        self.w = torch.zeros(0)
        self.images = torch.zeros(0, dtype=torch.uint8)
        self.refresh()
        if not len(self):
            raise DatasetError(f"{self.folder} holds no chunk_*.npz teacher pairs")

    def refresh(self) -> int:
        """Load chunks not seen yet; returns how many pairs were added."""
        new = [p for p in sorted(self.folder.glob("chunk_*.npz")) if p.name not in self._loaded
               and not p.name.endswith(".tmp.npz")]
        ws, images = [self.w] if len(self._loaded) else [], [self.images] if len(self._loaded) else []
        added = 0
        for path in new:
            try:
                with np.load(path, allow_pickle=False) as chunk:
                    w = torch.from_numpy(chunk["w"].astype(np.float32))
                    img = torch.from_numpy(chunk["img"])
            except (OSError, ValueError, KeyError) as exc:
                raise DatasetError(f"{path.name} is not a teacher-pair chunk ({exc})") from None
            if img.dtype != torch.uint8 or img.ndim != 4 or w.ndim != 2 or len(w) != len(img):
                raise DatasetError(f"{path.name}: expected w (N, w_dim) and uint8 img (N, C, R, R)")
            img = box_downsample(img.float(), self.resolution).round().to(torch.uint8)
            ws.append(w)
            images.append(img)
            self._loaded.append(path.name)
            added += len(w)
        if added:
            self.w, self.images = torch.cat(ws), torch.cat(images)
        return added

    def __len__(self) -> int:
        return len(self.w)

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(w (size, w_dim), images in [-1, 1]) drawn at random. Never flipped: a mirrored face
        is not the teacher's image for that w."""
        idx = torch.randint(len(self), (size,), generator=generator)
        return self.w[idx], self.images[idx].float().div(127.5).sub(1)
