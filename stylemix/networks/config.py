"""The hyper-parameters that fully determine a StyleGAN2 generator's shape and behaviour.

One flat, JSON-friendly record shared by every format: NVIDIA's ``init_kwargs`` convert to it
(``formats/nvidia_kwargs.py``), rosinality checkpoints are described by it, and the native format
stores it verbatim.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelLoadError, UnsupportedModelError
from .ops import ACTIVATIONS

ARCHITECTURES = ("orig", "skip", "resnet")
# Config fields that shape the mapping network, in both generator families: a blend that takes
# its mapping network from another model takes these with it.
MAPPING_FIELDS = ("z_dim", "c_dim", "mapping_layers", "embed_features", "layer_features",
                  "mapping_activation", "mapping_lr_multiplier", "w_avg_beta")


@dataclass
class GeneratorConfig:
    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int = 3
    mapping_layers: int = 8
    embed_features: int | None = None
    layer_features: int | None = None
    mapping_activation: str = "lrelu"
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.995
    channel_base: int = 32768
    channel_max: int = 512
    channels: dict[int, int] | None = None  # explicit channels per resolution (rosinality)
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    architecture: str = "skip"
    resample_filter: list[int] = field(default_factory=lambda: [1, 3, 3, 1])
    use_noise: bool = True
    synthesis_activation: str = "lrelu"
    kernel_size: int = 3
    # The 4×4 block's size (height, width): (4, 4) for NVIDIA's square networks; the non-square
    # TensorFlow forks (eps696/stylegan2's init_res, min_h/min_w in others) start from e.g.
    # (4, 8) or (3, 5), and every block r then has size (r·h/4, r·w/4).
    init_res: tuple[int, int] = (4, 4)

    def __post_init__(self):
        try:
            self.init_res = tuple(int(v) for v in self.init_res)
        except (TypeError, ValueError):
            raise ModelLoadError(f"init_res must be two integers, not {self.init_res!r}") from None
        if len(self.init_res) != 2 or not all(1 <= v <= 64 for v in self.init_res):
            raise ModelLoadError(f"init_res must be (height, width) from 1 to 64, not {self.init_res}")
        log2 = math.log2(self.img_resolution) if self.img_resolution > 0 else 0
        if not (log2.is_integer() and 2 <= log2 <= 12):
            raise UnsupportedModelError(
                f"image resolution {self.img_resolution} is not a power of two from 4 to 4096")
        if self.architecture not in ARCHITECTURES:
            raise UnsupportedModelError(
                f"synthesis architecture '{self.architecture}' is not supported "
                f"(supported: {', '.join(ARCHITECTURES)})")
        for act in (self.mapping_activation, self.synthesis_activation):
            if act not in ACTIVATIONS:
                raise UnsupportedModelError(f"activation '{act}' is not supported")
        for name in ("z_dim", "w_dim", "img_channels", "mapping_layers"):
            if int(getattr(self, name)) < 1:
                raise ModelLoadError(f"{name} must be positive, got {getattr(self, name)}")
        if self.c_dim < 0:
            raise ModelLoadError(f"c_dim must be >= 0, got {self.c_dim}")
        if self.channels is not None:
            self.channels = {int(r): int(c) for r, c in self.channels.items()}
            missing = [r for r in self.block_resolutions if r not in self.channels]
            if missing:
                raise ModelLoadError(f"channel count missing for resolutions {missing}")
        empty = [r for r in self.block_resolutions if self.channels_at(r) < 1]
        if empty:
            raise ModelLoadError(
                f"{empty[0]} px block would have no channels (channel_base {self.channel_base} "
                f"is smaller than the resolution)")

    # -- derived shape ------------------------------------------------------------------------
    @property
    def is_square(self) -> bool:
        return self.init_res == (4, 4)

    def size_at(self, res: int) -> tuple[int, int]:
        """(height, width) in px of the block of nominal resolution ``res``."""
        return res * self.init_res[0] // 4, res * self.init_res[1] // 4

    @property
    def img_size(self) -> tuple[int, int]:
        """(height, width) of the output image; (R, R) for square networks."""
        return self.size_at(self.img_resolution)

    @property
    def block_resolutions(self) -> list[int]:
        return [2 ** i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    def channels_at(self, res: int) -> int:
        if self.channels is not None:
            return self.channels[res]
        return min(self.channel_base // res, self.channel_max)

    @property
    def fp16_resolution(self) -> int:
        """Lowest resolution whose block runs in fp16 on CUDA (NVIDIA's rule)."""
        return max(2 ** (int(math.log2(self.img_resolution)) + 1 - self.num_fp16_res), 8)

    # -- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["channels"] is not None:
            d["channels"] = {str(k): v for k, v in d["channels"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GeneratorConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelLoadError(f"unknown generator config keys: {', '.join(unknown)}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ModelLoadError(f"incomplete generator config: {exc}") from None
