"""Toonify a photo: align the face → find its latent in the base model → render with the blend.

The latent comes from the pair's encoder when it has one (one forward pass, then a few
refinement steps that start from it: :func:`stylemix.project.project` with ``init_ws``), and
from optimisation from the mean w otherwise. It is cached by the aligned face and the
settings, so moving the blend sliders re-renders instantly instead of finding it again.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from .align import AlignedFace, align
from .blend import BlendSpec
from .engine import BlendEngine
from .lru import LRU
from .networks import Generator
from .errors import StylemixError
from .project import ProgressFn, ProjectionConfig, ProjectionResult, image_to_tensor, project, render_latent
from .render import check_class, to_uint8

CACHE_SIZE = 32
DEFAULT_REFINE_STEPS = 60   # refinement steps after the encoder (bench/instant_toonify.py)
# The share of the refinement's change that the toon keeps: the toon is drawn at
# encoder + share·(refined − encoder), the reconstruction at the refined latent. Refining fits
# the photo's own blotches and clutter into W+, off the latents the transfer was trained on, and
# the blend draws them as stains: on the tuning faces (teacher val 1,000,100–115) the refined
# latent's toon was a face for dlib in 13 of 16, halfway 15 of 16 (bench/RESULTS.md, "Tenth session").
TOON_REFINEMENT_SHARE = 0.5


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


def toon_latent(latent: ProjectionResult, share: float = TOON_REFINEMENT_SHARE) -> ProjectionResult:
    """The latent a toon is drawn at: ``init_ws + share·(ws − init_ws)`` for a refined encoder
    latent (shapes (1, num_ws, w_dim)); the latent itself when it has no ``init_ws`` (optimised
    from the mean w, or a file from before) or ``share`` is 1. Noise maps are kept."""
    if latent.init_ws is None or share == 1:
        return latent
    start = latent.init_ws.to(latent.ws.device)
    return ProjectionResult(start + share * (latent.ws - start), latent.noise, latent.history, latent.config)


def _to_image(tensor) -> Image.Image:
    arr = to_uint8(tensor)[0]
    return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


# Chosen on tuning faces (teacher val 1,000,100-1,000,111, never reported; bench/RESULTS.md):
# 60 steps at lr 0.5 with the layers' spread weighted 0.1 recognised 10 of 12 faces against 9 for
# 30 steps at 0.1 with spread 3, the toons as clean (HF energy 0.63 of random toons' against 0.67).
REFINE_SPREAD_WEIGHT = 0.1
REFINE_LR = 0.5


def refinement_config(steps: int, seed: int = 0, spread_weight: float | None = None,
                      lr: float | None = None) -> ProjectionConfig:
    """Projection settings for ``steps`` per-layer steps from an encoder's latent: the model's
    own noise maps (fitting them to the photo is what stains toons), the layers kept near one
    w (``spread_weight``, default REFINE_SPREAD_WEIGHT), no early stop; ``lr`` is the
    projection's (the W+ phase runs at a tenth of it; default REFINE_LR)."""
    return ProjectionConfig(steps=1, w_plus_steps=steps, optimise_noise=False,
                            early_stop_patience=max(steps, 1), seed=seed,
                            w_plus_spread_weight=REFINE_SPREAD_WEIGHT if spread_weight is None else spread_weight,
                            lr=REFINE_LR if lr is None else lr)


class Toonifier:
    """Holds a base/transfer pair (through a shared engine), its encoder when it has one, and a
    cache of the latents found for faces."""

    def __init__(self, G_base: Generator, G_transfer: Generator, engine: BlendEngine | None = None,
                 discriminator=None, encoder=None):
        self.G_base, self.G_transfer = G_base, G_transfer
        self.discriminator = discriminator  # the base file's D: extra projection features
        self.encoder = encoder              # stylemix.encoder.Encoder for G_base, or None
        self.engine = engine or BlendEngine(G_base, G_transfer)
        self.toon_share = TOON_REFINEMENT_SHARE   # toon_latent's share (1: the refined latent itself)
        self._cache: LRU[str, ProjectionResult] = LRU(CACHE_SIZE)

    def align(self, photo, all_faces: bool = False) -> list[AlignedFace]:
        return align(photo, output_size=self.G_base.img_resolution, all_faces=all_faces)

    def _key(self, aligned: Image.Image, cfg: ProjectionConfig, class_idx: int | None) -> str:
        h = hashlib.sha256(np.asarray(aligned.convert("RGB")).tobytes())
        h.update(repr((sorted(asdict(cfg).items()), class_idx)).encode())
        return h.hexdigest()

    def encode(self, aligned: Image.Image) -> ProjectionResult:
        """The encoder's latent for an aligned face (one forward pass; no noise maps)."""
        if self.encoder is None:
            raise StylemixError("this pair has no encoder (train one: stylemix train-encoder --base BASE -o RUN)")
        x = image_to_tensor(aligned, device=self.encoder.w_avg.device, channels=self.G_base.img_channels)
        if x.shape[-1] != self.G_base.img_resolution:
            raise StylemixError(f"the face must be aligned to {self.G_base.img_resolution} px")
        return ProjectionResult(self.encoder.encode(x), {}, [], None)

    def project(self, aligned: Image.Image, config: ProjectionConfig | None = None,
                progress: ProgressFn | None = None, class_idx: int | None = None,
                init: str = "auto", on_latent=None) -> ProjectionResult:
        """The latent of an aligned face in the base model, or the cached one for this face,
        settings and class. ``init``: "encoder" refines the encoder's latent with
        ``config.w_plus_steps`` steps (0: the encoding itself), "mean" optimises from the mean w
        (``class_idx``'s for a conditional model), "auto" uses the encoder when there is one.
        ``on_latent``: see :func:`stylemix.project.project`."""
        if init not in ("auto", "encoder", "mean"):
            raise StylemixError(f"init must be encoder, mean or auto, not {init!r}")
        if init == "encoder" and self.encoder is None:
            raise StylemixError("this pair has no encoder (train one: stylemix train-encoder --base BASE -o RUN)")
        use_encoder = self.encoder is not None and init != "mean"
        cfg = config or (refinement_config(DEFAULT_REFINE_STEPS) if use_encoder else ProjectionConfig())
        class_idx = check_class(self.G_base, class_idx)
        key = self._key(aligned, cfg, class_idx) + ("-encoder" if use_encoder else "")
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        start = self.encode(aligned).ws if use_encoder else None
        if use_encoder and not cfg.w_plus_steps:
            result = ProjectionResult(start, {}, [], cfg, init_ws=start)
        else:
            result = project(self.G_base, aligned, cfg, progress=progress, discriminator=self.discriminator,
                             class_idx=class_idx, init_ws=start, on_latent=on_latent)
        return self._cache.put(key, result)

    def render(self, latent: ProjectionResult, spec: BlendSpec) -> Image.Image:
        """``latent`` drawn by the blend ``spec`` as it is (the reconstruction: BlendSpec.linear(0))."""
        with self.engine.session(spec) as G:
            return _to_image(render_latent(G, latent))

    def render_toon(self, latent: ProjectionResult, spec: BlendSpec) -> Image.Image:
        """The toon of a projected face: the blend ``spec`` at :func:`toon_latent`."""
        return self.render(toon_latent(latent, self.toon_share), spec)

    def toonify(self, photo, spec: BlendSpec, config: ProjectionConfig | None = None,
                progress: ProgressFn | None = None, class_idx: int | None = None,
                init: str = "auto") -> ToonifyResult:
        """Align the largest face, find its latent in base (see :meth:`project`), render it
        with base and the blend. Images have the models' channel count (greyscale models give
        greyscale images)."""
        check_class(self.G_base, class_idx)  # before the slow steps
        face = self.align(photo)[0]
        latent = self.project(face.image, config, progress, class_idx, init)
        reconstruction = self.render(latent, BlendSpec.linear(0.0))  # the base model itself
        return ToonifyResult(face.image, reconstruction, self.render_toon(latent, spec), latent)


TOP_BLOCK_ALPHA = 0.5  # half_blended_swap: the r_swap block itself, half from each model
SOFT_EDGE = (0.75, 0.25)  # the default: α of the r_swap block and of the block above it


def toonify_r_swap(G_base: Generator) -> int:
    """The paper's r_swap scaled to the model: 8 px at 64 px, 16 px at 128 px, 32 px from 256 px
    up (Pinkney & Adler 2020 swap 1024 px FFHQ models at 32 px)."""
    return min(32, max(8, G_base.img_resolution // 8))


def default_toonify_spec(G_base: Generator, G_transfer: Generator | None = None) -> BlendSpec:
    """The blend ``toonify`` uses when none is given (CLI and app alike).

    A transfer file may carry the blend its maker chose for it (:func:`recommended_toonify_alphas`,
    set with ``tools/pack_default_pair.py --toonify-alphas``); the default pair's does. Without
    one: the paper's layer swap at :func:`toonify_r_swap` — blocks below r_swap from the transfer
    model (its structure: head shape, eyes), the rest from base (photographic rendering) — with a
    soft edge over two blocks, the r_swap block at α = 0.75 and the block above at 0.25
    (:data:`SOFT_EDGE`), which keeps smiles where a full block of a cartoon model redraws mouths
    (bench/RESULTS.md, "Eighth session"). A pair whose α groups do not include r_swap
    (StyleGAN3) gets the plain swap; one with no block above r_swap, the r_swap block at 0.75
    alone."""
    table = recommended_toonify_alphas(G_base, G_transfer)
    if table is not None:
        return BlendSpec.per_resolution(table)
    r_swap = toonify_r_swap(G_base)
    if r_swap not in G_base.block_resolutions:
        return BlendSpec.swap(r_swap, low="transfer")
    return soft_swap(G_base, r_swap, SOFT_EDGE)


def recommended_toonify_alphas(G_base: Generator,
                               G_transfer: Generator | None) -> dict[int, float] | None:
    """The transfer's own toonify blend ({block resolution in px: α}, unlisted blocks α 0), or
    None when it has none or names a resolution base has no block for (a hint made for another
    pair is ignored rather than half applied). Stored in the transfer's stylemix .safetensors
    metadata (``Generator.toonify_alphas``)."""
    table = getattr(G_transfer, "toonify_alphas", None)
    if not table or not set(table) <= set(G_base.block_resolutions):
        return None
    return dict(table)


def half_blended_swap(G_base: Generator, r_swap: int) -> BlendSpec:
    """The layer swap at ``r_swap`` (one of G_base's block resolutions) with that block itself
    at α = TOP_BLOCK_ALPHA: blocks below from the transfer, above from base."""
    return soft_swap(G_base, r_swap, (TOP_BLOCK_ALPHA,))


def soft_swap(G_base: Generator, r_swap: int, edge: tuple[float, ...]) -> BlendSpec:
    """The layer swap at ``r_swap`` (one of G_base's block resolutions) with its edge spread
    over blocks: α 1 below r_swap, ``edge[i]`` at r_swap·2^i (blocks the model has), 0 above."""
    table = {r: 1.0 for r in G_base.block_resolutions if r < r_swap}
    for i, alpha in enumerate(edge):
        if r_swap * 2 ** i in G_base.block_resolutions:
            table[r_swap * 2 ** i] = alpha
    return BlendSpec.per_resolution(table)
