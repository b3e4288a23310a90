"""Toonify a photo: align the face → project it into the base model → render with the blend.

The projected latent is cached by the aligned face and the projection settings, so moving the
blend sliders re-renders instantly instead of projecting again.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from .align import AlignedFace, align
from .blend import BlendSpec
from .engine import BlendEngine
from .networks import Generator
from .project import ProgressFn, ProjectionConfig, ProjectionResult, project, render_latent
from .render import check_class, to_uint8

CACHE_SIZE = 32


@dataclass
class ToonifyResult:
    aligned: Image.Image
    reconstruction: Image.Image   # the latent rendered by the base model
    toon: Image.Image             # the same latent rendered by the blend
    latent: ProjectionResult

    def side_by_side(self, photo: Image.Image | None = None, size: int | None = None) -> Image.Image:
        """photo (if given) | aligned | reconstruction | toon, each ``size`` px square."""
        tiles = ([photo] if photo is not None else []) + [self.aligned, self.reconstruction, self.toon]
        size = size or max(256, self.toon.width)
        sheet = Image.new("RGB", (len(tiles) * size, size), (255, 255, 255))
        for i, tile in enumerate(tiles):
            tile = tile.convert("RGB")
            if i == 0 and photo is not None:
                tile = tile.copy()
                tile.thumbnail((size, size), Image.LANCZOS)
                sheet.paste(tile, (i * size + (size - tile.width) // 2, (size - tile.height) // 2))
                continue
            resample = Image.NEAREST if tile.width <= size else Image.LANCZOS
            sheet.paste(tile.resize((size, size), resample), (i * size, 0))
        return sheet


def _to_image(tensor) -> Image.Image:
    arr = to_uint8(tensor)[0]
    return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


class Toonifier:
    """Holds a base/transfer pair (through a shared engine) and a cache of projected faces."""

    def __init__(self, G_base: Generator, G_transfer: Generator, engine: BlendEngine | None = None,
                 discriminator=None):
        self.G_base, self.G_transfer = G_base, G_transfer
        self.discriminator = discriminator  # the base file's D: extra projection features
        self.engine = engine or BlendEngine(G_base, G_transfer)
        self._cache: OrderedDict[str, ProjectionResult] = OrderedDict()
        self._cache_lock = threading.Lock()

    def align(self, photo, all_faces: bool = False) -> list[AlignedFace]:
        return align(photo, output_size=self.G_base.img_resolution, all_faces=all_faces)

    def _key(self, aligned: Image.Image, cfg: ProjectionConfig, class_idx: int | None) -> str:
        h = hashlib.sha256(np.asarray(aligned.convert("RGB")).tobytes())
        h.update(repr((sorted(asdict(cfg).items()), class_idx)).encode())
        return h.hexdigest()

    def project(self, aligned: Image.Image, config: ProjectionConfig | None = None,
                progress: ProgressFn | None = None, class_idx: int | None = None) -> ProjectionResult:
        """Project into the base model (from ``class_idx``'s mean w for a conditional one), or
        return the cached latent for this face, config and class."""
        cfg = config or ProjectionConfig()
        class_idx = check_class(self.G_base, class_idx)
        key = self._key(aligned, cfg, class_idx)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        result = project(self.G_base, aligned, cfg, progress=progress, discriminator=self.discriminator,
                         class_idx=class_idx)
        with self._cache_lock:
            self._cache[key] = result
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def render(self, latent: ProjectionResult, spec: BlendSpec) -> Image.Image:
        with self.engine.session(spec) as G:
            return _to_image(render_latent(G, latent))

    def toonify(self, photo, spec: BlendSpec, config: ProjectionConfig | None = None,
                progress: ProgressFn | None = None, class_idx: int | None = None) -> ToonifyResult:
        """Align the largest face, project it into base, render it with base and the blend.
        Images have the models' channel count (greyscale models give greyscale images)."""
        check_class(self.G_base, class_idx)  # before the slow steps
        face = self.align(photo)[0]
        latent = self.project(face.image, config, progress, class_idx)
        reconstruction = self.render(latent, BlendSpec.linear(0.0))  # the base model itself
        return ToonifyResult(face.image, reconstruction, self.render(latent, spec), latent)


TOP_BLOCK_ALPHA = 0.5  # the r_swap block itself, half from each model


def toonify_r_swap(G_base: Generator) -> int:
    """The paper's r_swap scaled to the model: 8 px at 64 px, 16 px at 128 px, 32 px from 256 px
    up (Pinkney & Adler 2020 swap 1024 px FFHQ models at 32 px)."""
    return min(32, max(8, G_base.img_resolution // 8))


def default_toonify_spec(G_base: Generator) -> BlendSpec:
    """The blend ``toonify`` uses when none is given (CLI and app alike): the paper's layer
    swap at :func:`toonify_r_swap` — blocks below r_swap from the transfer model (its structure:
    head shape, eyes), the rest from base (photographic rendering) — with the r_swap block
    itself half-blended (α = 0.5). On the default pair that soft edge keeps the toonified image
    a face to dlib's detector for 7 of 7 photos instead of 4 of 7 with the hard swap, at the
    same distance to the person (bench/RESULTS.md, "Toonify keeps the person"). A pair whose α
    groups do not include r_swap (StyleGAN3) gets the plain swap."""
    r_swap = toonify_r_swap(G_base)
    groups = G_base.block_resolutions
    if r_swap not in groups:
        return BlendSpec.swap(r_swap, low="transfer")
    table = {r: 1.0 for r in groups if r < r_swap}
    table[r_swap] = TOP_BLOCK_ALPHA
    return BlendSpec.per_resolution(table)
