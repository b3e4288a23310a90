"""StyleGAN2 generator: mapping network (z, c → w) and synthesis network (w → image).

Module and parameter names are NVIDIA stylegan2-ada-pytorch's (``mapping.fc0.weight``,
``synthesis.b64.conv1.affine.weight`` …), so an NVIDIA state dict loads without renaming.
"""

from __future__ import annotations

import math
import os
import re

import torch
from torch import nn

from .config import GeneratorConfig
from .layers import Conv2dLayer, FullyConnectedLayer, SynthesisLayer, ToRGBLayer
from .ops import (PRECISIONS, fast_path_applies, fast_upsample2d, make_fir_filter,
                  normalize_2nd_moment, upsample2d)

_BLOCK_RE = re.compile(r"synthesis\.b(\d+)\.")
# Tensors whose first axis is the block's output channel (feature map).
_CHANNEL_RE = re.compile(r"synthesis\.b\d+\.(const|(conv0|conv1|skip)\.(weight|bias))")


def is_channel_tensor(name: str) -> bool:
    """True when axis 0 of StyleGAN2 parameter ``name`` indexes the block's output feature maps."""
    return _CHANNEL_RE.fullmatch(name) is not None


def resolution_of(name: str) -> int | None:
    """The StyleGAN2 block resolution a parameter belongs to (None for the mapping network)."""
    m = _BLOCK_RE.match(name)
    return int(m.group(1)) if m else None


def checked_ws(ws, noise_mode: str, num_ws: int, w_dim: int, device) -> torch.Tensor:
    """A synthesis network's input as float32 on ``device``, after checking its shape and the
    noise mode, so a wrong call fails with the expected shape named."""
    if noise_mode not in ("const", "random", "none"):
        raise ValueError(f"noise_mode must be 'const', 'random' or 'none', not {noise_mode!r}")
    ws = torch.as_tensor(ws, device=device).float()
    if ws.ndim != 3 or ws.shape[1:] != (num_ws, w_dim):
        raise ValueError(f"ws must have shape [N, {num_ws}, {w_dim}], got {list(ws.shape)}")
    return ws


class MappingNetwork(nn.Module):
    """z (and optional class label c) → w, broadcast to ``num_ws`` copies; truncation toward w_avg."""

    def __init__(self, cfg: GeneratorConfig, num_ws: int):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = cfg.z_dim, cfg.c_dim, cfg.w_dim, num_ws
        embed = (cfg.embed_features if cfg.embed_features is not None else cfg.w_dim) if cfg.c_dim else 0
        hidden = cfg.layer_features if cfg.layer_features is not None else cfg.w_dim
        features = [cfg.z_dim + embed] + [hidden] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        if cfg.c_dim:
            self.embed = FullyConnectedLayer(cfg.c_dim, embed)
        for i in range(cfg.mapping_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(
                features[i], features[i + 1], activation=cfg.mapping_activation,
                lr_multiplier=cfg.mapping_lr_multiplier))
        self.num_layers = cfg.mapping_layers
        self.register_buffer("w_avg", torch.zeros([cfg.w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        z = torch.as_tensor(z, device=self.w_avg.device)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        x = normalize_2nd_moment(z.float())
        if self.c_dim:
            if c is None:
                raise ValueError(f"this generator is conditional: pass c with shape [N, {self.c_dim}]")
            c = torch.as_tensor(c, device=self.w_avg.device).float()
            if c.shape != (z.shape[0], self.c_dim):
                raise ValueError(f"c must have shape [{z.shape[0]}, {self.c_dim}], got {list(c.shape)}")
            x = torch.cat([x, normalize_2nd_moment(self.embed(c))], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisBlock(nn.Module):
    """One resolution: (upsampling conv0,) conv1, and torgb for skip blocks or the last block."""

    def __init__(self, cfg: GeneratorConfig, resolution: int):
        super().__init__()
        self.resolution = resolution
        self.in_channels = cfg.channels_at(resolution // 2) if resolution > 4 else 0
        out_channels = cfg.channels_at(resolution)
        self.architecture = cfg.architecture
        self.is_last = resolution == cfg.img_resolution
        self.use_fp16 = resolution >= cfg.fp16_resolution
        self.half_on_cpu = False
        layer = dict(w_dim=cfg.w_dim, resolution=resolution, size=cfg.size_at(resolution),
                     kernel_size=cfg.kernel_size,
                     use_noise=cfg.use_noise, activation=cfg.synthesis_activation,
                     resample_filter=cfg.resample_filter, conv_clamp=cfg.conv_clamp)
        self.register_buffer("resample_filter", make_fir_filter(cfg.resample_filter))
        self.num_conv = 0
        if self.in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, *cfg.size_at(resolution)]))
        else:
            self.conv0 = SynthesisLayer(self.in_channels, out_channels, up=2, **layer)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer)
        self.num_conv += 1
        self.num_torgb = int(self.is_last or cfg.architecture == "skip")
        if self.num_torgb:
            self.torgb = ToRGBLayer(out_channels, cfg.img_channels, cfg.w_dim,
                                    conv_clamp=cfg.conv_clamp)
        if self.in_channels and cfg.architecture == "resnet":
            self.skip = Conv2dLayer(self.in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=cfg.resample_filter)

    def forward(self, x, img, ws: torch.Tensor, noise_mode: str, force_fp32: bool,
                precision: str = "float32", noise: dict[str, torch.Tensor] | None = None):
        """``noise``: per-call noise maps by layer name (``synthesis.b8.conv0``), for const mode."""
        w_iter = iter(ws.unbind(1))
        maps = noise or {}
        conv0 = maps.get(f"synthesis.b{self.resolution}.conv0")
        conv1 = maps.get(f"synthesis.b{self.resolution}.conv1")
        # Half precision where the model asks for it, on CUDA only (CPU half convolutions are
        # slow); half_on_cpu lets the tests check the half path's numbers on a CPU.
        fp16 = self.use_fp16 and not force_fp32 and (ws.device.type == "cuda" or self.half_on_cpu)
        dtype = torch.float16 if fp16 else torch.float32
        if not fp16 and precision == "bf16" and ws.device.type == "cpu":
            dtype = torch.bfloat16  # opt-in preview: float32's range, so every block may use it
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, next(w_iter), noise_mode, noise_map=conv1)
        elif self.architecture == "resnet":
            x = x.to(dtype)
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode, noise_map=conv0)
            x = self.conv1(x, next(w_iter), noise_mode, gain=math.sqrt(0.5), noise_map=conv1)
            x = y + x
        else:
            x = x.to(dtype)
            x = self.conv0(x, next(w_iter), noise_mode, noise_map=conv0)
            x = self.conv1(x, next(w_iter), noise_mode, noise_map=conv1)
        fast = img is not None and fast_path_applies(img)
        if img is not None:
            img = (fast_upsample2d if fast else upsample2d)(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, next(w_iter)).float()
            # The upsampled image is this block's own tensor: the fast path adds in place.
            img = y if img is None else img.add_(y) if fast else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """Blocks b4 … bR; block r consumes ws[k : k + num_conv + num_torgb] (torgb shares the next w)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.w_dim, self.img_resolution = cfg.w_dim, cfg.img_resolution
        self.img_channels = cfg.img_channels
        self.block_resolutions = cfg.block_resolutions
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(cfg, res)
            self.num_ws += block.num_conv + (block.num_torgb if block.is_last else 0)
            setattr(self, f"b{res}", block)
        # Compute precision on a CPU: "float32", or the "bf16" preview (bfloat16 activations and
        # weights, float32 image; fast where the CPU has AMX/AVX-512 BF16, error reported in
        # bench/RESULTS.md). Set per network, per call, or with STYLEMIX_PRECISION.
        self.precision = os.environ.get("STYLEMIX_PRECISION", "float32")

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", force_fp32: bool = False,
                precision: str | None = None, noise: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """ws: [N, num_ws, w_dim] → images [N, img_channels, R, R], float32, about [-1, 1].
        ``precision`` ("float32" or "bf16", CPU only; default ``self.precision``). ``noise``: maps
        by layer name (``synthesis.b8.conv0`` → [R, R]) used instead of the stored constant ones
        in "const" mode, for this call only — shared networks are never changed to render them."""
        ws = checked_ws(ws, noise_mode, self.num_ws, self.w_dim, self.b4.const.device)
        return self.run_blocks(ws, None, None, self.block_resolutions, noise_mode, force_fp32,
                               precision, noise)[1].contiguous()

    def run_blocks(self, ws: torch.Tensor, x, img, resolutions: list[int], noise_mode: str = "const",
                   force_fp32: bool = False, precision: str | None = None,
                   noise: dict[str, torch.Tensor] | None = None):
        """Run only ``resolutions`` (consecutive blocks) from features ``x`` and skip image ``img``:
        lets a caller that changes one block reuse everything below it."""
        precision = self.precision if precision is None else precision
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            if res in resolutions:
                block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
                x, img = block(x, img, block_ws, noise_mode, force_fp32, precision, noise)
            w_idx += block.num_conv
        return x, img


class StyleGenerator(nn.Module):
    """What every generator family shares: a mapping network, latents, the full forward pass,
    and the questions a blend asks of it (which α group a tensor follows, which tensors are
    picked rather than averaged)."""

    mapping: MappingNetwork
    synthesis: nn.Module

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.source = None      # formats.ModelSource, set by the loaders
        self.blend_info = None  # dict describing the blend that produced this generator, if any
        self.toonify_alphas = None  # {block px: α} a transfer's maker chose for toonify, if any
        self.load_notes: list[str] = []  # what a loader filled in or assumed, for `info` and the UI

    def forget_file_metadata(self, *, keep_source: bool = False) -> "StyleGenerator":
        """Drop what the file this generator came from said about itself — ``blend_info`` (its
        recipe), ``toonify_alphas`` (the blend its maker chose for its pair) and, unless
        ``keep_source``, ``source`` (its path, hash and pickle) — for a new model trained, blended
        or recomposed from it, which is not that file. ``keep_source``: a blend of it still
        exports into that pickle (the template that fits). Returns self."""
        self.blend_info = self.toonify_alphas = None
        if not keep_source:
            self.source = None
        return self

    family = "stylegan2"
    supports_channel_alpha = True

    @property
    def alpha_groups(self) -> list[int]:
        """The α groups of the synthesis network, in pixels: block resolutions for StyleGAN2,
        output sampling rates for StyleGAN3 (each group takes one α in a blend)."""
        return list(self.synthesis.block_resolutions)

    def alpha_group_of(self, name: str) -> int | None:
        """The α group a state-dict entry follows; None for the mapping network (and w_avg)."""
        return resolution_of(name)

    @property
    def block_resolutions(self) -> list[int]:
        """StyleGAN2's name for :attr:`alpha_groups` (kept: callers say "resolution")."""
        return self.alpha_groups

    def resolution_of(self, name: str) -> int | None:
        """StyleGAN2's name for :meth:`alpha_group_of`."""
        return self.alpha_group_of(name)

    def is_channel_tensor(self, name: str) -> bool:
        """True when axis 0 of ``name`` indexes its group's output feature maps (channel α)."""
        return is_channel_tensor(name)

    def is_picked(self, name: str) -> bool:
        """True for buffers a blend takes whole from the dominant model instead of averaging."""
        return name.endswith("noise_const") or name.endswith("resample_filter")

    @torch.no_grad()
    def sample_w(self, samples: int = 10_000, seed: int = 0) -> torch.Tensor:
        """Untruncated w (samples, w_dim) for random z and uniformly drawn classes."""
        gen = torch.Generator().manual_seed(seed)
        device = self.mapping.w_avg.device
        z = torch.randn([samples, self.z_dim], generator=gen).to(device)
        c = None
        if self.c_dim:
            c = torch.eye(self.c_dim)[torch.randint(self.c_dim, [samples], generator=gen)].to(device)
        return self.mapping(z, c)[:, 0]

    @torch.no_grad()
    def estimate_w_avg(self, samples: int = 10_000, seed: int = 0) -> None:
        """Set mapping.w_avg to the mean w: needed when a file lacks it, or when a blended
        mapping network has its own mean."""
        self.mapping.w_avg.copy_(self.sample_w(samples, seed).mean(0))

    def forward(self, z, c=None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                noise_mode: str = "const", force_fp32: bool = False) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32)


class Generator(StyleGenerator):
    """The StyleGAN2 generator; ``config`` says its shape, ``source`` where it was loaded from."""

    def __init__(self, config: GeneratorConfig):
        super().__init__(config)
        self.synthesis = SynthesisNetwork(config)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(config, self.num_ws)
