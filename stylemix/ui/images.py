"""Images as the page shows and offers them: at least 256 px (Lanczos), lossless PNG,
greyscale models in grey; and the parents' images, cached because they never change with α.
"""

from __future__ import annotations

import io
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from PIL import Image

from ..blend import BlendSpec
from ..lru import LRU
from ..render import MIN_SAVED_SIZE, make_grid, render_seeds, resized, to_uint8
from ..toonify import Toonifier

TILE_SIZE = 128  # px: each of the grid's tiles, at least

BASE_ONLY = BlendSpec.linear(0.0)
TRANSFER_ONLY = BlendSpec.linear(1.0, mapping="transfer")


def to_image(array: np.ndarray) -> Image.Image:
    """An HWC uint8 array (one channel for greyscale models) or an HW one as an RGB or L image."""
    return Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array)


def shown(image, size: int = MIN_SAVED_SIZE) -> np.ndarray:
    """A render (HWC uint8 array or PIL image) as the page shows and offers it: resampled with
    Lanczos to at least ``size`` px (larger models keep their own size); 2-D for greyscale."""
    image = image if isinstance(image, Image.Image) else to_image(np.asarray(image))
    return np.asarray(resized(image, max(size, image.width)))


def render_seed(G, seed: int, psi: float, class_idx: int | None, size: int = MIN_SAVED_SIZE) -> np.ndarray:
    """One seed through ``G`` (a live blend or a parent), as shown."""
    return shown(to_uint8(render_seeds(G, [int(seed)], psi=float(psi), class_idx=class_idx))[0], size)


def render_one(toonifier: Toonifier, spec: BlendSpec, seed: int, psi: float,
               class_idx: int | None = None) -> np.ndarray:
    """One seed through the shared engine set to ``spec``."""
    with toonifier.engine.session(spec) as G:
        return render_seed(G, seed, psi, class_idx)


def render_triptych(toonifier: Toonifier, seed: int, psi: float, spec: BlendSpec,
                    class_idx: int | None = None) -> list[np.ndarray]:
    """base | blend | transfer for one seed, as shown."""
    return [render_one(toonifier, s, seed, psi, class_idx) for s in (BASE_ONLY, spec, TRANSFER_ONLY)]


def grid_image(tiles: list[np.ndarray]) -> np.ndarray:
    """Tiles (as shown) in one row with a thin white gutter."""
    tiles = [t if t.ndim == 3 else t[..., None] for t in tiles]
    grid = make_grid(np.stack(tiles), columns=len(tiles))
    return grid[..., 0] if grid.shape[-1] == 1 else grid


class ParentCache:
    """base and transfer images by (pair, seed, ψ, class): they do not depend on any α, so a
    slider move never renders them again.  Least recently used out."""

    def __init__(self, size: int = 64):
        self._images: LRU[tuple, tuple[np.ndarray, np.ndarray]] = LRU(size)

    def get(self, key: tuple):
        return self._images.get(key)

    def render(self, key: tuple, toonifier: Toonifier, seed: int, psi: float,
               class_idx: int | None) -> tuple[np.ndarray, np.ndarray]:
        """The cached pair of images, or both rendered (through the engine: the parents' own
        modules may be busy with a projection's noise maps)."""
        images = self.get(key)
        if images is None:
            images = self._images.put(key, (render_one(toonifier, BASE_ONLY, seed, psi, class_idx),
                                            render_one(toonifier, TRANSFER_ONLY, seed, psi, class_idx)))
        return images


def png_bytes(array: np.ndarray) -> bytes:
    """A shown image (HWC uint8, or HW for greyscale) as lossless PNG bytes (fast compression)."""
    data = io.BytesIO()
    to_image(np.asarray(array)).save(data, format="PNG", compress_level=1)
    return data.getvalue()


class ShownFiles:
    """Every image the page shows, written by the handler as a file of its own and handed to
    Gradio as a path.

    Why not return the array: Gradio saves an array under a name made from its bytes and
    rewrites that file each time the same picture comes again (a still webcam, a slider moved
    back), while a browser may still be reading it: the answer then breaks off ("too much data
    for declared Content-Length") and the page shows a broken image.  A path is copied into
    Gradio's cache once, under a temporary name renamed into place, so it is never rewritten.
    Writing here also puts the encoding inside the time the page reports.  The newest ``keep``
    files are kept (Gradio copies each as soon as the handler returns)."""

    def __init__(self, root: Path | None = None, keep: int = 256):
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="stylemix-shown-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._written: deque[Path] = deque()
        self._keep = keep
        self._lock = threading.Lock()

    def png(self, array: np.ndarray, name: str) -> str:
        """A shown image (HWC uint8, or HW for greyscale) as a lossless PNG; its path."""
        return self.store(png_bytes(array), name)

    def jpeg(self, array: np.ndarray, name: str) -> str:
        """The same as a JPEG (quality 90): encodes fast enough for a live view."""
        data = io.BytesIO()
        to_image(np.asarray(array)).save(data, format="JPEG", quality=90)
        return self.store(data.getvalue(), name)

    def store(self, data: bytes, name: str) -> str:
        """An image already encoded (``png_bytes``) as a file of its own; its path."""
        folder = self.root / f"{time.time_ns():x}-{threading.get_ident():x}"
        folder.mkdir()
        path = folder / name
        path.write_bytes(data)
        with self._lock:
            self._written.append(path)
            while len(self._written) > self._keep:
                old = self._written.popleft()
                old.unlink(missing_ok=True)
                try:
                    old.parent.rmdir()
                except OSError:
                    pass
        return str(path)
