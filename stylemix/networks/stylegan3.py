"""StyleGAN3 ("alias-free") generator, -t and -r, with NVIDIA's module and parameter names.

The synthesis network is a Fourier-feature input followed by a chain of layers
``L{i}_{size}_{channels}``.  Each layer is a modulated convolution, then a *filtered* leaky ReLU:
upsample with a low-pass filter, apply the nonlinearity at the higher rate, low-pass and
downsample again, so the features stay band-limited.  Unlike StyleGAN2 the layers have no single
resolution; each works at a *sampling rate* (16, 32 … img_resolution px) and we blend by that:
the α of "32 px" drives every layer whose output is sampled at 32 px.

The layer geometry (sizes with margins, sampling rates, filter taps, paddings) and the filters
themselves are read from the model file rather than re-derived, so the network renders exactly
what it was trained with.  It always runs in float32.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelLoadError, UnsupportedModelError
from .generator import MappingNetwork, StyleGenerator, checked_ws
from .layers import FullyConnectedLayer
from .ops import fir_filter, insert_zeros, pad_crop

MAX_CHANNELS = 8192
MAX_SIZE = 8192
MAX_TAPS = 128
MAX_FACTOR = 16


@dataclass
class InputSpec:
    """The Fourier-feature input: ``channels`` sinusoids on a ``size`` grid at ``sampling_rate``."""

    channels: int
    size: list[int]            # [width, height], margins included
    sampling_rate: float
    bandwidth: float


@dataclass
class LayerSpec:
    """One synthesis layer's geometry, as the model file records it."""

    name: str
    in_channels: int
    out_channels: int
    in_size: list[int]         # [width, height]
    out_size: list[int]
    in_sampling_rate: float
    out_sampling_rate: float
    is_torgb: bool
    conv_kernel: int
    up_factor: int
    up_taps: int
    down_factor: int
    down_taps: int
    down_radial: bool
    padding: list[int]         # [left, right, top, bottom] of the upsampling pass
    conv_clamp: float | None = None

    @property
    def group(self) -> int:
        """The α group: the sampling rate of the layer's output, in pixels."""
        return int(round(self.out_sampling_rate))

    def expected_out_size(self) -> list[int]:
        """What the layer's arithmetic produces from ``in_size``: checks a file's geometry."""
        out = []
        for axis, (lo, hi) in enumerate(((self.padding[0], self.padding[1]),
                                         (self.padding[2], self.padding[3]))):
            s = self.in_size[axis] + self.conv_kernel - 1
            s = s * self.up_factor + lo + hi - (self.up_taps - 1) - (self.down_taps - 1)
            out.append(-(-s // self.down_factor) if s > 0 else s)
        return out


@dataclass
class StyleGAN3Config:
    """Everything that fixes a StyleGAN3 generator's shape; JSON-friendly for the native format."""

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    input: InputSpec
    layers: list[LayerSpec]
    output_scale: float = 0.25
    mapping_layers: int = 2
    embed_features: int | None = None
    layer_features: int | None = None
    mapping_activation: str = "lrelu"
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.998
    use_radial_filters: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # other init kwargs, kept for the record

    def __post_init__(self):
        if isinstance(self.input, dict):
            self.input = InputSpec(**self.input)
        self.layers = [LayerSpec(**l) if isinstance(l, dict) else l for l in self.layers]
        self.validate()

    @property
    def architecture(self) -> str:
        return "stylegan3-r" if self.use_radial_filters else "stylegan3-t"

    @property
    def num_ws(self) -> int:
        return len(self.layers) + 1

    @property
    def block_resolutions(self) -> list[int]:
        return sorted({int(round(self.input.sampling_rate))} | {l.group for l in self.layers})

    def validate(self) -> None:
        """Refuse geometry that could not come from StyleGAN3 (or would need absurd memory)."""
        for name in ("z_dim", "w_dim", "img_channels", "mapping_layers", "img_resolution"):
            value = getattr(self, name)
            if not (isinstance(value, int) and 1 <= value <= MAX_SIZE):
                raise ModelLoadError(f"StyleGAN3 {name} must be a positive integer, got {value!r}")
        if not (isinstance(self.c_dim, int) and 0 <= self.c_dim <= MAX_CHANNELS):
            raise ModelLoadError(f"StyleGAN3 c_dim must be ≥ 0, got {self.c_dim!r}")
        if not self.layers:
            raise ModelLoadError("StyleGAN3 synthesis network has no layers")
        inp = self.input
        _check_size("input", inp.size)
        _check_count("input channels", inp.channels)
        prev_size, prev_channels = inp.size, inp.channels
        for layer in self.layers:
            what = f"layer {layer.name}"
            _check_size(what, layer.in_size)
            _check_size(what, layer.out_size)
            _check_count(f"{what} channels", layer.in_channels)
            _check_count(f"{what} channels", layer.out_channels)
            for n in ("up_factor", "down_factor"):
                if not 1 <= getattr(layer, n) <= MAX_FACTOR:
                    raise ModelLoadError(f"{what} has {n} {getattr(layer, n)}")
            for n in ("up_taps", "down_taps", "conv_kernel"):
                if not 1 <= getattr(layer, n) <= MAX_TAPS:
                    raise ModelLoadError(f"{what} has {n} {getattr(layer, n)}")
            if len(layer.padding) != 4 or any(abs(p) > MAX_SIZE for p in layer.padding):
                raise ModelLoadError(f"{what} has a malformed padding {layer.padding}")
            if list(layer.in_size) != list(prev_size) or layer.in_channels != prev_channels:
                raise ModelLoadError(f"{what} does not take the previous layer's output")
            if layer.expected_out_size() != list(layer.out_size):
                raise ModelLoadError(
                    f"{what}: its filters and padding give {layer.expected_out_size()} px, "
                    f"but it declares {list(layer.out_size)}")
            prev_size, prev_channels = layer.out_size, layer.out_channels
        last = self.layers[-1]
        if not last.is_torgb or last.out_channels != self.img_channels or \
                list(last.out_size) != [self.img_resolution] * 2:
            raise ModelLoadError("the last StyleGAN3 layer does not produce the image")
        for res in self.block_resolutions:
            if res < 4 or not math.log2(res).is_integer():
                raise UnsupportedModelError(
                    f"a StyleGAN3 layer samples at {res} px, not a power of two: cannot group it")

    def channels_at(self, res: int) -> int:
        """Widest layer output at sampling rate ``res`` (for summaries)."""
        return max([l.out_channels for l in self.layers if l.group == res] or [self.input.channels])

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["generator"] = "stylegan3"
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StyleGAN3Config":
        d = {k: v for k, v in d.items() if k != "generator"}
        try:
            return cls(**d)
        except TypeError as exc:
            raise ModelLoadError(f"incomplete StyleGAN3 config: {exc}") from None


def _check_size(what: str, size) -> None:
    if len(size) != 2 or not all(isinstance(s, int) and 1 <= s <= MAX_SIZE for s in size):
        raise ModelLoadError(f"{what} has an impossible size {size}")


def _check_count(what: str, n) -> None:
    if not (isinstance(n, int) and 1 <= n <= MAX_CHANNELS):
        raise ModelLoadError(f"{what}: impossible count {n!r}")


# -- numerics -----------------------------------------------------------------------------------

def _resample_reference(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
                        pad=(0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """Zero-insert ×up, pad (negative crops), convolve with ``f``, keep every down-th pixel.

    The plain definition: a 1-D ``f`` is applied along both axes (separable; each pass takes
    √gain), a 2-D one (the radial filters of -r) in one go.  :func:`resample` computes the same
    faster; this one defines it.
    """
    if up > 1:
        x = insert_zeros(x, up)
    if f is None:
        x = pad_crop(x, pad) * gain
    elif f.ndim == 1:
        left, right, top, bottom = pad
        x = fir_filter(x, f[None, :], (left, right, 0, 0), gain=math.sqrt(gain))
        x = fir_filter(x, f[:, None], (0, 0, top, bottom), gain=math.sqrt(gain))
    else:
        x = fir_filter(x, f, pad, gain=gain)
    return x[:, :, ::down, ::down] if down > 1 else x


def _axis_matrix(f: torch.Tensor, n_in: int, up: int, down: int, pad: tuple[int, int],
                 gain: float) -> torch.Tensor:
    """The separable resampling along one axis as an (n_in, n_out) matrix: the same steps as
    the reference, applied to the identity.  Zero-insertion and striding then cost nothing."""
    rows = torch.eye(n_in, dtype=f.dtype, device=f.device)
    if up > 1:
        rows = F.pad(rows.unsqueeze(2), [0, up - 1]).reshape(n_in, n_in * up)
    rows = pad_crop(rows, (pad[0], pad[1], 0, 0))
    kernel = (f.flip(0) * math.sqrt(gain)).reshape(1, 1, -1)
    return F.conv1d(rows.unsqueeze(1), kernel)[:, 0, ::down]


def resample(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
             pad=(0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """:func:`_resample_reference`, fast: separable filters as two small matrix products per
    image (BLAS instead of depthwise convolutions over zero-filled maps), 2-D filters as one
    strided depthwise convolution."""
    if f is None or (f.ndim == 2 and up > 1):
        return _resample_reference(x, f, up=up, down=down, pad=pad, gain=gain)
    if f.ndim == 2:
        return fir_filter(x, f, pad, gain=gain, stride=down)
    f = f.to(x.dtype)
    # Each axis takes √gain, as in the reference (one 1-D pass per axis).
    along_w = _axis_matrix(f, x.shape[3], up, down, (pad[0], pad[1]), gain)
    along_h = _axis_matrix(f, x.shape[2], up, down, (pad[2], pad[3]), gain)
    return along_h.t() @ (x @ along_w)


def filtered_lrelu(x: torch.Tensor, up_filter, down_filter, bias: torch.Tensor, up: int, down: int,
                   padding, gain: float, slope: float, clamp: float | None) -> torch.Tensor:
    """Bias, upsample, leaky ReLU at the high rate (×gain, clamped), then low-pass and downsample."""
    x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    x = resample(x, up_filter, up=up, pad=padding, gain=up * up)
    if slope != 1:
        x = F.leaky_relu(x, slope)
    if clamp is not None:
        x = (x * gain).clamp(-clamp, clamp)
        gain = 1.0
    # Without a clamp the gain commutes with the (linear) downsampling: fold it into the filter
    # there and save a pass over the largest tensor of the layer.
    return resample(x, down_filter, down=down, gain=gain)


def modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, padding: int,
                   demodulate: bool, input_gain: torch.Tensor) -> torch.Tensor:
    """StyleGAN3's modulated convolution, done by scaling activations around one shared conv.

    With demodulation, weights and styles are first brought to unit RMS (the demodulation then
    cancels those scales; they only keep the numbers in range).  ``input_gain`` undoes the
    magnitude of the layer's input recorded during training.
    """
    batch, in_ch = styles.shape
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
    x = x * styles.reshape(batch, in_ch, 1, 1)
    x = F.conv2d(x, weight, padding=padding)
    scale = input_gain.reshape(1, 1)
    if demodulate:
        per_out = (weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)).square().sum(dim=[2, 3, 4])
        scale = scale * (per_out + 1e-8).rsqrt()
    return x * scale.reshape(scale.shape[0], -1, 1, 1)


# -- modules ------------------------------------------------------------------------------------

class SynthesisInput(nn.Module):
    """Sinusoids of fixed frequencies, rotated and shifted per sample by an affine of w."""

    def __init__(self, spec: InputSpec, w_dim: int):
        super().__init__()
        self.spec = spec
        c = spec.channels
        self.weight = nn.Parameter(torch.zeros([c, c]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", torch.zeros([c, 2]))
        self.register_buffer("phases", torch.zeros([c]))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        batch = w.shape[0]
        spec = self.spec
        # Per-sample rotation (cos, sin) and translation, normalised by the rotation's length.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        cos, sin, tx, ty = t.unbind(1)
        one, zero = torch.ones_like(cos), torch.zeros_like(cos)
        # Built out of place (not by writing into an identity), so vmap can batch blends.
        rotate = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], 1).reshape(batch, 3, 3)
        shift = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], 1).reshape(batch, 3, 3)
        m = rotate @ shift @ self.transform.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs @ m[:, :2, 2:]).squeeze(2)
        freqs = self.freqs @ m[:, :2, :2]
        # Fade out frequencies near Nyquist so nothing aliases.
        amplitude = (1 - (freqs.norm(dim=2) - spec.bandwidth)
                     / (spec.sampling_rate / 2 - spec.bandwidth)).clamp(0, 1)
        # Sample positions: the grid of the output, in units of the sampling rate.
        width, height = spec.size
        theta = torch.tensor([[0.5 * width / spec.sampling_rate, 0, 0],
                              [0, 0.5 * height / spec.sampling_rate, 0]], device=w.device)
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, height, width], align_corners=False)
        x = torch.einsum("hwk,nck->nhwc", grid[0], freqs) + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amplitude[:, None, None, :]
        x = x @ (self.weight / math.sqrt(spec.channels)).t()
        return x.permute(0, 3, 1, 2)


class AliasFreeLayer(nn.Module):
    """Modulated conv + filtered leaky ReLU (or the final modulated 1×1 to RGB)."""

    def __init__(self, spec: LayerSpec, w_dim: int):
        super().__init__()
        self.spec = spec
        k = spec.conv_kernel
        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.zeros([spec.out_channels, spec.in_channels, k, k]))
        self.bias = nn.Parameter(torch.zeros([spec.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        if spec.up_taps > 1:
            self.register_buffer("up_filter", torch.zeros([spec.up_taps]))
        else:
            self.up_filter = None
        if spec.down_taps > 1:
            shape = (spec.down_taps,) * (2 if spec.down_radial else 1)  # radial filters are 2-D
            self.register_buffer("down_filter", torch.zeros(shape))
        else:
            self.down_filter = None

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        styles = self.affine(w)
        if spec.is_torgb:
            styles = styles / math.sqrt(spec.in_channels * spec.conv_kernel ** 2)
        x = modulated_conv(x, self.weight, styles, padding=spec.conv_kernel - 1,
                           demodulate=not spec.is_torgb, input_gain=self.magnitude_ema.rsqrt())
        gain, slope = (1.0, 1.0) if spec.is_torgb else (math.sqrt(2), 0.2)
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, spec.up_factor,
                              spec.down_factor, spec.padding, gain, slope, spec.conv_clamp)


class SynthesisNetwork3(nn.Module):
    """ws[:, 0] drives the input, ws[:, i + 1] layer i; the result is scaled by output_scale."""

    def __init__(self, cfg: StyleGAN3Config):
        super().__init__()
        self.w_dim, self.img_resolution = cfg.w_dim, cfg.img_resolution
        self.img_channels = cfg.img_channels
        self.output_scale = cfg.output_scale
        self.num_ws = cfg.num_ws
        self.block_resolutions = cfg.block_resolutions
        self.input = SynthesisInput(cfg.input, cfg.w_dim)
        self.layer_names = [l.name for l in cfg.layers]
        for spec in cfg.layers:
            setattr(self, spec.name, AliasFreeLayer(spec, cfg.w_dim))

    def forward(self, ws: torch.Tensor, noise_mode: str = "const",
                force_fp32: bool = True, noise: dict | None = None) -> torch.Tensor:
        """``noise_mode`` and ``noise`` are accepted for a uniform interface; StyleGAN3 has no
        noise inputs."""
        ws = checked_ws(ws, noise_mode, self.num_ws, self.w_dim, self.input.weight.device)
        x = self.input(ws[:, 0])
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x, ws[:, i + 1])
        return x * self.output_scale


class Generator3(StyleGenerator):
    """A StyleGAN3 generator: StyleGAN2's mapping network, the alias-free synthesis network."""

    family = "stylegan3"
    supports_channel_alpha = False  # channel α is a StyleGAN2 feature for now

    def __init__(self, config: StyleGAN3Config):
        super().__init__(config)
        self.synthesis = SynthesisNetwork3(config)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(config, self.num_ws)
        self._group = {"input": int(round(config.input.sampling_rate))}
        self._group.update((l.name, l.group) for l in config.layers)

    def alpha_group_of(self, name: str) -> int | None:
        """The sampling rate of the layer ``name`` belongs to (None for the mapping network)."""
        parts = name.split(".")
        if parts[0] != "synthesis" or len(parts) < 3:
            return None
        return self._group[parts[1]]

    def is_channel_tensor(self, name: str) -> bool:
        return False

    def is_picked(self, name: str) -> bool:
        return False  # filters, frequencies and magnitude EMAs interpolate smoothly

    def layers_by_group(self) -> dict[int, list[str]]:
        """{sampling rate: [layer names]}: what each α slider drives (shown in the UI)."""
        out: dict[int, list[str]] = {}
        out.setdefault(self._group["input"], []).append("input")
        for spec in self.config.layers:
            out.setdefault(spec.group, []).append(spec.name)
        return out
