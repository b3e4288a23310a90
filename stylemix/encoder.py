"""A face → W+ encoder for one base generator: instant projection for toonify.

The idea is e4e's (Tov et al. 2021, "Designing an Encoder for StyleGAN Image Manipulation"),
written here from scratch and trained without any pretrained backbone: predict **one** w for the
face plus a small **offset per synthesis layer**, with a regulariser that keeps the offsets
small. Latents built that way stay near the W space both models of a pair were trained on, so
the transferred model can draw them — per-layer latents that fit a photo freely drift off it,
which is what turns optimised toons into pale ghosts.

The network is a compact residual pyramid: an aligned face (at most 256 px; larger bases are
encoded from a box-downsampled face) is reduced by stride-2 residual blocks to 4×4; the 4×4
features give the one w (as a step from the base's mean w, in units of the base's w spread),
and the 8, 16 and 32 px features give the offsets of the coarse, middle and fine layers (the
split of a feature pyramid: structure from coarse features, texture from fine ones).

File format (``.safetensors``): the encoder's tensors plus metadata ``format`` =
``stylemix-encoder``, ``config`` (JSON of :class:`EncoderConfig`), ``base_fingerprint`` (see
:func:`generator_fingerprint`), ``base_name`` and free-form ``info`` (JSON: training kimg,
data, time). :func:`load_encoder` refuses an encoder whose base fingerprint is not the
generator it is asked to serve, in one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ModelLoadError, StylemixError
from .io import atomic_write, first_line

ENCODER_FORMAT = "stylemix-encoder"
MAX_INPUT = 256


class EncoderMismatchError(ModelLoadError):
    """An encoder file was trained for another base generator."""


@dataclass
class EncoderConfig:
    """Shapes of an encoder: the base's output (``resolution``, ``img_channels``) and latents
    (``num_ws`` × ``w_dim``), and the network's width (``width`` feature maps at the input
    size, doubling per halving up to ``max_width``)."""
    resolution: int
    img_channels: int
    num_ws: int
    w_dim: int
    width: int = 24
    max_width: int = 256
    hidden: int = 512

    @property
    def input_resolution(self) -> int:
        return min(self.resolution, MAX_INPUT)

    def layer_level(self, index: int) -> int:
        """Which pyramid level (8, 16 or 32 px features) predicts the offset of ws[index]:
        coarse layers (blocks up to 8 px) from 8, middle (16-32 px) from 16, fine from 32."""
        block = 4 * 2 ** (index // 2)
        return 8 if block <= 8 else 16 if block <= 32 else 32


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class DownBlock(nn.Module):
    """Residual block halving the resolution: two 3×3 convolutions beside an average-pooled 1×1."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.norm0 = _norm(cout)
        self.conv1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm1 = _norm(cout)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.norm0(self.conv0(x)), 0.2)
        y = self.norm1(self.conv1(y))
        return F.leaky_relu(y + self.skip(F.avg_pool2d(x, 2)), 0.2)


class LatentHead(nn.Module):
    """Features (C, S, S) → ``count`` vectors of ``w_dim``: pooled to 2×2 (4×4 for the one w),
    one hidden layer, one linear layer per output vector (stacked)."""

    def __init__(self, channels: int, pool: int, hidden: int, count: int, w_dim: int):
        super().__init__()
        self.pool, self.count, self.w_dim = pool, count, w_dim
        self.fc0 = nn.Linear(channels * pool * pool, hidden)
        self.fc1 = nn.Linear(hidden, count * w_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(x, self.pool).flatten(1)
        return self.fc1(F.leaky_relu(self.fc0(x), 0.2)).view(-1, self.count, self.w_dim)


class Encoder(nn.Module):
    """Aligned faces (N, C, R, R) in [-1, 1] → W+ latents (N, num_ws, w_dim) for the base.

    ``forward`` returns ``(ws, offsets)``: ws = w_avg + w_std ⊙ (step + offset_l) per layer l;
    ``offsets`` (N, num_ws, w_dim, in units of w_std) is what the training regulariser keeps
    small. ``w_avg`` and ``w_std`` (each w_dim: the base's mean w and per-dimension spread) are
    stored as buffers."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        res = config.input_resolution
        if res < 32 or res & (res - 1):
            raise StylemixError(f"an encoder needs a power-of-two base of at least 32 px, not {config.resolution}")
        width = lambda r: min(config.width * (res // r), config.max_width)  # noqa: E731
        self.stem = nn.Conv2d(config.img_channels, width(res), 3, padding=1)
        self.blocks = nn.ModuleDict()
        r = res
        while r > 4:
            self.blocks[str(r // 2)] = DownBlock(width(r), width(r // 2))
            r //= 2
        self.levels = {lvl: [i for i in range(config.num_ws) if config.layer_level(i) == lvl]
                       for lvl in (8, 16, 32)}
        self.w_head = LatentHead(width(4), 4, config.hidden, 1, config.w_dim)
        self.offset_heads = nn.ModuleDict({
            str(lvl): LatentHead(width(lvl), 2, config.hidden, len(idx), config.w_dim)
            for lvl, idx in self.levels.items() if idx})
        for head in self.offset_heads.values():  # start as "one w for every layer"
            nn.init.zeros_(head.fc1.weight)
            nn.init.zeros_(head.fc1.bias)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))
        self.register_buffer("w_std", torch.ones(config.w_dim))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        if images.ndim != 4 or images.shape[1:] != (cfg.img_channels, cfg.resolution, cfg.resolution):
            raise StylemixError(f"the encoder takes faces of shape (N, {cfg.img_channels}, {cfg.resolution}, "
                                f"{cfg.resolution}), not {list(images.shape)}")
        x = images
        if cfg.resolution > cfg.input_resolution:
            x = F.avg_pool2d(x, cfg.resolution // cfg.input_resolution)
        x = F.leaky_relu(self.stem(x), 0.2)
        features = {}
        for r, block in self.blocks.items():
            x = block(x)
            features[int(r)] = x
        step = self.w_head(features[4])                          # (N, 1, w_dim)
        offsets = torch.zeros(len(images), cfg.num_ws, cfg.w_dim, device=images.device, dtype=step.dtype)
        for lvl, head in self.offset_heads.items():
            offsets[:, self.levels[int(lvl)]] = head(features[int(lvl)])
        ws = self.w_avg + self.w_std * (step + offsets)
        return ws, offsets

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """W+ latents only (no gradients)."""
        return self.forward(images)[0]


# --- which base ------------------------------------------------------------------------------
def generator_fingerprint(G) -> str:
    """SHA-256 (hex) of a generator's parameters and buffers as float32, by name: the same
    weights give the same fingerprint whatever file they came from (pickle, .pt, safetensors,
    float16 storage included)."""
    h = hashlib.sha256()
    for name, value in sorted(G.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def encoder_for(G, width: int = 24, max_width: int = 256, samples: int = 10_000) -> Encoder:
    """A new encoder shaped for base ``G``, holding G's mean w and per-dimension spread of w
    (over ``samples`` seeded z)."""
    cfg = EncoderConfig(resolution=G.img_resolution, img_channels=G.img_channels, num_ws=G.num_ws,
                        w_dim=G.w_dim, width=width, max_width=max_width)
    E = Encoder(cfg)
    w = G.sample_w(samples, seed=123).cpu()
    E.w_avg.copy_(w.mean(0))
    E.w_std.copy_(w.std(0).clamp_min(1e-4))
    return E


# --- the file ---------------------------------------------------------------------------------
def save_encoder(E: Encoder, path: str | os.PathLike, base_fingerprint: str, base_name: str = "",
                 info: dict | None = None) -> None:
    """Write ``E`` as safetensors (weights as float16, buffers float32) with its metadata."""
    from safetensors.torch import save_file
    tensors = {}
    buffers = {name for name, _ in E.named_buffers()}
    for name, value in E.state_dict().items():
        value = value.detach().cpu().contiguous()
        tensors[name] = value if name in buffers else value.to(torch.float16)
    meta = {"format": ENCODER_FORMAT, "config": json.dumps(dataclasses.asdict(E.config)),
            "base_fingerprint": base_fingerprint, "base_name": base_name,
            "info": json.dumps(info or {})}
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read_encoder_metadata(path: str | os.PathLike) -> dict:
    """The metadata of an encoder file; ModelLoadError when it is not one."""
    from safetensors import SafetensorError, safe_open
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"no such encoder file: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path.name} is not a readable safetensors file ({str(exc)[:120]})") from None
    if meta.get("format") != ENCODER_FORMAT:
        raise ModelLoadError(f"{path.name} is not a stylemix encoder (no '{ENCODER_FORMAT}' metadata)")
    return meta


def load_encoder(path: str | os.PathLike, base=None, device: str = "cpu") -> Encoder:
    """The encoder in ``path``, in eval mode on ``device``. With ``base`` (a generator), refuse
    (EncoderMismatchError) an encoder trained for other weights."""
    from safetensors.torch import load_file
    path = Path(path)
    meta = read_encoder_metadata(path)
    if base is not None:
        mine = generator_fingerprint(base)
        if meta.get("base_fingerprint") != mine:
            name = f" ({meta['base_name']})" if meta.get("base_name") else ""
            raise EncoderMismatchError(
                f"{path.name} was trained for another base{name}: fingerprint "
                f"{meta.get('base_fingerprint', '?')[:12]}, this base is {mine[:12]} "
                f"(train one with: stylemix train-encoder --base BASE -o RUN)")
    try:
        E = Encoder(EncoderConfig(**json.loads(meta["config"])))
        E.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{path.name}: encoder tensors do not match its config "
                             f"({first_line(exc)[:120]})") from None
    E.info = json.loads(meta.get("info") or "{}")
    return E.to(device).eval().requires_grad_(False)


def encoder_size_mib(E: Encoder) -> float:
    """Size of the saved file's tensors (float16 weights) in MiB."""
    buffers = {name for name, _ in E.named_buffers()}
    total = sum(v.numel() * (4 if k in buffers else 2) for k, v in E.state_dict().items())
    return total / 2 ** 20


__all__ = ["ENCODER_FORMAT", "Encoder", "EncoderConfig", "EncoderMismatchError", "encoder_for",
           "encoder_size_mib", "generator_fingerprint", "load_encoder", "read_encoder_metadata",
           "save_encoder"]
