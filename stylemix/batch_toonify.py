"""Toonify a folder of photos: aligned one by one, encoded and drawn in batches, resumable.

Each photo ``NAME.ext`` becomes ``OUT/NAME.toon.png``, written atomically as soon as its batch
is drawn, so stopping the run loses nothing already written, and running it again skips the
outputs that exist. Photos that cannot be used (not an image, no face, too many pixels) are
reported one line each and skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from PIL import Image

from .align import load_image
from .blend import BlendSpec
from .errors import ImageInputError, StylemixError
from .project import image_to_tensor, project
from .render import resized, save_image, saved_size, to_uint8
from .toonify import Toonifier, refinement_config, toon_latent
from .io import first_line

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic")


@dataclass
class FolderReport:
    written: list[Path] = field(default_factory=list)
    done_before: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (file name, one-line reason)
    seconds: float = 0.0


def photos_in(folder: Path) -> list[Path]:
    """Files of ``folder`` with a photo suffix, sorted by name (not recursive)."""
    if not folder.is_dir():
        raise StylemixError(f"no such folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)


def output_for(photo: Path, out_dir: Path) -> Path:
    return out_dir / f"{photo.stem}.toon.png"


def toonify_folder(pair: Toonifier, folder: str | Path, out_dir: str | Path, spec: BlendSpec,
                   steps: int = 0, batch: int = 8, size: int | None = None, force: bool = False,
                   skipped: Callable[[str, str], None] | None = None,
                   progress: Callable[[int], None] | None = None) -> FolderReport:
    """Toonify every photo of ``folder`` into ``out_dir`` with the pair's encoder (+ ``steps``
    refinement steps per photo); ``batch`` faces are encoded and drawn together. ``skipped``
    is told (file name, reason) for each photo left out, ``progress`` the count of photos
    finished (written, skipped or done before) after each. Raises StylemixError without an
    encoder or without photos."""
    if pair.encoder is None:
        raise StylemixError("toonifying a folder needs the pair's encoder (train one: stylemix "
                            "train-encoder --base BASE -o RUN)")
    folder, out_dir = Path(folder), Path(out_dir)
    files = photos_in(folder)
    if not files:
        raise StylemixError(f"{folder} holds no photos ({', '.join(PHOTO_SUFFIXES)})")
    out_dir.mkdir(parents=True, exist_ok=True)
    report, start = FolderReport(), time.perf_counter()
    pending: list[tuple[Path, Image.Image]] = []
    res = pair.G_base.img_resolution

    def tell(n: int = 1):
        if progress is not None:
            progress(n)

    def flush():
        if not pending:
            return
        faces = torch.cat([image_to_tensor(face, device=pair.encoder.w_avg.device,
                                           channels=pair.G_base.img_channels) for _, face in pending])
        ws = pair.encoder.encode(faces)
        if steps:   # the toon is drawn at toon_latent: part of the way from the encoding
            ws = torch.cat([toon_latent(project(pair.G_base, face, refinement_config(steps), init_ws=w[None]), pair.toon_share).ws
                            for (_, face), w in zip(pending, ws)])
        with pair.engine.session(spec) as G:
            images = to_uint8(G.synthesis(ws.to(G.mapping.w_avg.device), noise_mode="const"))
        for (photo, _), arr in zip(pending, images):
            image = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
            path = output_for(photo, out_dir)
            save_image(resized(image, saved_size(res, size)), path)
            report.written.append(path)
        tell(len(pending))
        pending.clear()

    for photo in files:
        path = output_for(photo, out_dir)
        if path.exists() and not force:
            report.done_before.append(path)
            tell()
            continue
        try:
            face = pair.align(load_image(photo))[0].image
        except (ImageInputError, OSError) as exc:
            reason = first_line(exc)
            report.skipped.append((photo.name, reason))
            if skipped is not None:
                skipped(photo.name, reason)
            tell()
            continue
        pending.append((photo, face))
        if len(pending) >= batch:
            flush()
    flush()
    report.seconds = time.perf_counter() - start
    return report


__all__ = ["FolderReport", "PHOTO_SUFFIXES", "output_for", "photos_in", "toonify_folder"]
