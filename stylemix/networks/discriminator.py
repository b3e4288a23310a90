"""StyleGAN2 discriminator with NVIDIA's names, so the D stored in a pickle loads 1:1.

Projection uses its block activations as a perceptual feature space that needs no downloaded
weights (the model's own D has learned what its images look like); the trainer needs it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import UnsupportedModelError
from .config import ARCHITECTURES
from .layers import Conv2dLayer, FullyConnectedLayer
from .ops import downsample2d, make_fir_filter, normalize_2nd_moment


@dataclass
class DiscriminatorConfig:
    c_dim: int
    img_resolution: int
    img_channels: int = 3
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    cmap_dim: int | None = None
    activation: str = "lrelu"
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    mapping_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise UnsupportedModelError(f"discriminator architecture '{self.architecture}' is not supported")

    def channels_at(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)


class DiscriminatorBlock(nn.Module):
    """(fromrgb,) conv0, downsampling conv1, and a downsampling 1×1 skip for resnet."""

    def __init__(self, cfg: DiscriminatorConfig, resolution: int):
        super().__init__()
        self.in_channels = cfg.channels_at(resolution) if resolution < cfg.img_resolution else 0
        tmp, out = cfg.channels_at(resolution), cfg.channels_at(resolution // 2)
        self.architecture = cfg.architecture
        common = dict(activation=cfg.activation, conv_clamp=cfg.conv_clamp)
        self.register_buffer("resample_filter", make_fir_filter())
        if self.in_channels == 0 or cfg.architecture == "skip":
            self.fromrgb = Conv2dLayer(cfg.img_channels, tmp, kernel_size=1, **common)
        self.conv0 = Conv2dLayer(tmp, tmp, kernel_size=3, **common)
        self.conv1 = Conv2dLayer(tmp, out, kernel_size=3, down=2, **common)
        if cfg.architecture == "resnet":
            self.skip = Conv2dLayer(tmp, out, kernel_size=1, bias=False, down=2)

    def forward(self, x, img):
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """4×4 head: minibatch standard deviation, conv, fc, and the (class-projected) score."""

    def __init__(self, cfg: DiscriminatorConfig, cmap_dim: int):
        super().__init__()
        ch = cfg.channels_at(4)
        self.architecture, self.cmap_dim = cfg.architecture, cmap_dim
        self.group_size, self.num_channels = cfg.mbstd_group_size, cfg.mbstd_num_channels
        if cfg.architecture == "skip":
            self.fromrgb = Conv2dLayer(cfg.img_channels, ch, kernel_size=1, activation=cfg.activation)
        self.conv = Conv2dLayer(ch + self.num_channels, ch, kernel_size=3, activation=cfg.activation,
                                conv_clamp=cfg.conv_clamp)
        self.fc = FullyConnectedLayer(ch * 16, ch, activation=cfg.activation)
        self.out = FullyConnectedLayer(ch, cmap_dim or 1)

    def minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size else n
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, x, img, cmap=None):
        if self.architecture == "skip":
            x = x + self.fromrgb(img)
        if self.num_channels:
            x = self.minibatch_std(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim:
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x


class LabelMapping(nn.Module):
    """A conditional D's label embedding: NVIDIA's mapping network with z_dim 0 and no w_avg."""

    def __init__(self, c_dim: int, cmap_dim: int, num_layers: int = 8, embed_features=None,
                 layer_features=None, activation: str = "lrelu", lr_multiplier: float = 0.01, **_):
        super().__init__()
        embed = embed_features if embed_features is not None else cmap_dim
        hidden = layer_features if layer_features is not None else cmap_dim
        features = [embed] + [hidden] * (num_layers - 1) + [cmap_dim]
        self.num_layers = num_layers
        self.embed = FullyConnectedLayer(c_dim, embed)
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation=activation,
                                                        lr_multiplier=lr_multiplier))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(self.embed(c.float()))
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x


class Discriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.config = cfg
        self.block_resolutions = [2 ** i for i in range(int(math.log2(cfg.img_resolution)), 2, -1)]
        cmap_dim = 0 if not cfg.c_dim else (cfg.cmap_dim or cfg.channels_at(4))
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(cfg, res))
        if cfg.c_dim:
            self.mapping = LabelMapping(cfg.c_dim, cmap_dim, **cfg.mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(cfg, cmap_dim)

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Each block's output, fine to coarse."""
        x, out = None, []
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
            out.append(x)
        return out

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x, skip_img = None, img
        for res in self.block_resolutions:
            x, skip_img = getattr(self, f"b{res}")(x, skip_img)
        cmap = self.mapping(c) if self.config.c_dim else None
        return self.b4(x, skip_img, cmap)
