"""Animations: sweep the blend for one face, or walk through latents of a blended model.

Frames are rendered through the engine (only changed weights are recomposed per frame) and
written as a looping GIF, enlarged with nearest-neighbour so small models stay crisp.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .blend import BlendSpec
from .engine import BlendEngine
from .errors import StylemixError
from .io import atomic_write
from .render import class_vector, seed_to_z, to_pil, to_uint8

SWEEPS = ("alpha", "swap", "smooth")


def sweep_specs(kind: str, resolutions: list[int], frames: int, low: str = "transfer") -> list[BlendSpec]:
    """The blends to show, there and back: α 0→1, each swap resolution, or a ramp's centre."""
    if kind not in SWEEPS:
        raise StylemixError(f"sweep must be one of {', '.join(SWEEPS)}, not '{kind}'")
    if frames < 2:
        raise StylemixError("an animation needs at least 2 frames")
    if kind == "swap":
        specs = [BlendSpec.swap(r, low=low) for r in resolutions[:-1]]
    elif kind == "alpha":
        specs = [BlendSpec.linear(i / (frames - 1)) for i in range(frames)]
    else:
        lo, hi = math.log2(resolutions[0]), math.log2(resolutions[-1])
        specs = [BlendSpec.smooth(2 ** (lo + (hi - lo) * i / (frames - 1)), 0.5, low=low)
                 for i in range(frames)]
    return specs + specs[-2:0:-1]  # back again, so the loop is seamless


def _slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation: keeps z at the typical norm of a Gaussian sample."""
    an, bn = a / a.norm(), b / b.norm()
    omega = torch.acos((an * bn).sum().clamp(-1, 1))
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


@torch.no_grad()
def sweep_frames(engine: BlendEngine, specs: list[BlendSpec], seed: int, psi: float = 0.7,
                 class_idx: int | None = None) -> list[np.ndarray]:
    G = engine.generator
    z = seed_to_z(seed, G.z_dim).to(G.mapping.w_avg.device)
    c = class_vector(G, class_idx, 1)
    frames = []
    for spec in specs:
        with engine.session(spec) as live:
            frames.append(to_uint8(live.synthesis(live.mapping(z, c, truncation_psi=psi)))[0])
    return frames


@torch.no_grad()
def walk_frames(engine: BlendEngine, spec: BlendSpec, seeds: list[int], steps: int = 12,
                psi: float = 0.7, class_idx: int | None = None) -> list[np.ndarray]:
    """A loop through the given seeds' latents, rendered by one blend (in one class)."""
    if len(seeds) < 2:
        raise StylemixError("a latent walk needs at least two seeds")
    G = engine.generator
    c = class_vector(G, class_idx, 1)
    zs = [seed_to_z(s, G.z_dim) for s in seeds]
    frames = []
    with engine.session(spec) as live:
        for a, b in zip(zs, zs[1:] + zs[:1]):
            for i in range(steps):
                z = _slerp(a, b, i / steps).to(live.mapping.w_avg.device)
                frames.append(to_uint8(live.synthesis(live.mapping(z, c, truncation_psi=psi)))[0])
    return frames


def save_gif(frames: list[np.ndarray], path, fps: float = 12, min_size: int = 256) -> None:
    scale = max(1, min_size // frames[0].shape[0])
    images = [to_pil(f, scale).convert("RGB") for f in frames]
    with atomic_write(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(1000 / fps), loop=0)
