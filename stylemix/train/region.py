"""Where in the image a paired phase may learn the stylised target (``--learn-region``).

A block trained on whole stylised images learns every change the style makes at its scale:
the 32 px block of the default pair's transfer learnt the emoji's round eyes *and* its small
closed mouth, so a swap that takes 32 px from the transfer gives cartoon eyes but loses a
photo's smile. With a region, the target is the stylised image inside it and the start model's
own drawing (at the same latent) outside: the block learns the eyes and leaves the rest as it
was.

A region is a soft mask in the aligned face's layout, (1, 1, R, R) in [0, 1]:

- ``"eyes"``: two soft ellipses over the eyes of an FFHQ-aligned face. Centres and sizes are
  the mean dlib 68-point eye and brow landmarks of 80 of the teacher's held-out faces
  (1,000,120–199; eyes x 0.33–0.43 and 0.57–0.67, y 0.46–0.49; brows from y 0.38), widened to
  cover the emoji set's larger eyes; in units of the image side.
- ``"no-mouth"``: everywhere but a soft ellipse over the mouth (the same faces' mouth
  landmarks: x 0.39–0.61, y 0.71–0.79, widened for a broad smile).
- a path: a greyscale image (white = learn, black = keep), resized to R px.

A region also says what random faces must keep (``keep_faces``): the stylised images' latents
are few and alike, so a block held to the start model only at those latents is free to redraw
a real smile however it likes; drawn at random faces' latents too, everything outside the
region is held to the start model's drawing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import StylemixError

EYE_CENTRES = ((0.38, 0.472), (0.62, 0.472))   # x, y of each eye, image side = 1 (measured 0.378, 0.618)
EYE_RADII = (0.105, 0.09)                       # the ellipse's half width and half height
MOUTH_CENTRE, MOUTH_RADII = (0.5, 0.75), (0.17, 0.10)
EDGE = 0.6   # the mask falls from 1 to 0 between (1 − EDGE) and 1 of the ellipse's radius²

PRESETS = ("eyes", "no-mouth")


def _ellipse(resolution: int, centre: tuple[float, float], radii: tuple[float, float]) -> np.ndarray:
    """(R, R): 1 inside the ellipse, falling softly to 0 at its edge (image side = 1)."""
    y, x = (np.mgrid[0:resolution, 0:resolution] + 0.5) / resolution
    r2 = ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
    return np.clip((1 - r2) / EDGE, 0, 1)


def eyes_mask(resolution: int) -> torch.Tensor:
    """(1, 1, R, R): 1 over both eyes (and the lower brows) of an FFHQ-aligned face, a soft edge,
    0 elsewhere."""
    mask = np.maximum(*(_ellipse(resolution, centre, EYE_RADII) for centre in EYE_CENTRES))
    return torch.tensor(mask, dtype=torch.float32)[None, None]


def no_mouth_mask(resolution: int) -> torch.Tensor:
    """(1, 1, R, R): 1 everywhere but the mouth of an FFHQ-aligned face (soft edge)."""
    mask = 1 - _ellipse(resolution, MOUTH_CENTRE, MOUTH_RADII)
    return torch.tensor(mask, dtype=torch.float32)[None, None]


def region_mask(region: str, resolution: int) -> torch.Tensor:
    """The mask (1, 1, R, R) in [0, 1] of ``region``: a preset name (:data:`PRESETS`) or a
    greyscale image file. Raises StylemixError (one line) for a missing, unreadable or empty file."""
    if region == "eyes":
        return eyes_mask(resolution)
    if region == "no-mouth":
        return no_mouth_mask(resolution)
    path = Path(region)
    if not path.is_file():
        raise StylemixError(f"--learn-region {region}: neither a preset ({', '.join(PRESETS)}) nor an image file")
    try:
        with Image.open(path) as image:
            grey = image.convert("L").resize((resolution, resolution), Image.BILINEAR)
    except (UnidentifiedImageError, OSError) as e:
        raise StylemixError(f"--learn-region {region}: not a readable image ({e.__class__.__name__})") from None
    mask = torch.tensor(np.asarray(grey, dtype=np.float32) / 255.0)[None, None]
    if not mask.max() > 0:
        raise StylemixError(f"--learn-region {region}: the mask is black everywhere, so nothing would be learnt")
    return mask
