"""Which feature maps of a block matter? Rank channels by what swapping each one does.

Channel-dependent α only helps if a person can find the channels worth blending. For one
resolution, flip each output channel alone to the other model (α_c = 1 − α_r, the rest of the
blend unchanged) and measure how much the image moves, averaged over a few seeds; optionally
only inside a box, so "the channels that change the eyes" can be asked for directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .blend import BlendSpec, check_channel_support
from .engine import BlendEngine
from .errors import BlendSpecError
from .networks import Generator
from .render import class_vector, seed_to_z


@dataclass(frozen=True)
class ChannelEffect:
    channel: int
    change: float  # mean absolute pixel change in [-1, 1] units (inside the box, if one was given)


def block_channels(G: Generator, resolution: int) -> int:
    check_channel_support(G, True)
    if resolution not in G.block_resolutions:
        raise BlendSpecError(f"{resolution} px is not a block of this model "
                             f"({', '.join(map(str, G.block_resolutions))})")
    return getattr(G.synthesis, f"b{resolution}").conv1.weight.shape[0]


@torch.no_grad()
def rank_channels(engine: BlendEngine, spec: BlendSpec, resolution: int, seeds: list[int],
                  psi: float = 0.7, box: tuple[float, float, float, float] | None = None,
                  class_idx: int | None = None) -> list[ChannelEffect]:
    """Channels of block ``resolution``, most influential first.

    ``box`` = (left, top, right, bottom) as fractions of the image limits the measurement to
    a region; ``class_idx`` is the class a conditional pair renders.  The engine is left
    holding ``spec`` afterwards.
    """
    G = engine.generator
    count = block_channels(G, resolution)
    block_alpha = spec.alphas(G.block_resolutions)[resolution]
    flipped = 1.0 - block_alpha if block_alpha in (0.0, 1.0) else (0.0 if block_alpha > 0.5 else 1.0)
    device = G.mapping.w_avg.device
    z = torch.cat([seed_to_z(s, G.z_dim) for s in seeds]).to(device)
    size = G.img_resolution
    if box is None:
        rows = cols = slice(None)
    else:
        left, top, right, bottom = box
        if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
            raise BlendSpecError("box must be (left, top, right, bottom) fractions with left < right, top < bottom")
        rows = slice(int(top * size), max(int(top * size) + 1, round(bottom * size)))
        cols = slice(int(left * size), max(int(left * size) + 1, round(right * size)))
    below = [r for r in G.block_resolutions if r < resolution]
    above = [r for r in G.block_resolutions if r >= resolution]
    with engine.session(spec) as live:
        ws = live.mapping(z, class_vector(G, class_idx, len(seeds)), truncation_psi=psi)
        x, img = live.synthesis.run_blocks(ws, None, None, below)  # shared by every channel
        reference = live.synthesis.run_blocks(ws, x, img, above)[1][:, :, rows, cols]
    effects = []
    for channel in range(count):
        with engine.session(spec.with_channels(resolution, [channel], flipped)) as live:
            image = live.synthesis.run_blocks(ws, x, img, above)[1][:, :, rows, cols]
        effects.append(ChannelEffect(channel, (image - reference).abs().mean().item()))
    engine.set_spec(spec)
    return sorted(effects, key=lambda e: -e.change)
