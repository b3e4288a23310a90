"""Small numeric building blocks of StyleGAN2: activations, FIR resampling, modulated convolution.

Everything is plain PyTorch (no custom kernels to compile), so it runs on any CPU or GPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# name -> (function, default gain). lrelu uses slope 0.2, as StyleGAN2 does.
ACTIVATIONS = {
    "linear": (lambda x: x, 1.0),
    "relu": (F.relu, math.sqrt(2)),
    "lrelu": (lambda x: F.leaky_relu(x, 0.2), math.sqrt(2)),
    "tanh": (torch.tanh, 1.0),
    "sigmoid": (torch.sigmoid, 1.0),
    "elu": (F.elu, 1.0),
    "selu": (F.selu, 1.0),
    "softplus": (F.softplus, 1.0),
    "swish": (lambda x: x * torch.sigmoid(x), math.sqrt(2)),
}


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, activation: str = "linear",
             gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply the activation, scale by gain, then clamp."""
    func, default_gain = ACTIVATIONS[activation]
    if bias is not None:
        x = x + bias.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2))
    x = func(x)
    gain = default_gain if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def make_fir_filter(taps=(1, 3, 3, 1)) -> torch.Tensor:
    """2-D low-pass filter from 1-D taps (outer product), normalised to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 1:
        f = torch.outer(f, f)
    return f / f.sum()


def pad_crop(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Pad the last two axes by (left, right, top, bottom) zeros; negative values crop."""
    left, right, top, bottom = pad
    x = F.pad(x, [max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)])
    return x[..., max(-top, 0): x.shape[-2] - max(-bottom, 0),
             max(-left, 0): x.shape[-1] - max(-right, 0)]


def fir_filter(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int, int, int],
               gain: float = 1.0, stride: int = 1) -> torch.Tensor:
    """Pad (left, right, top, bottom; negative crops) and convolve each channel with ``f``
    (keeping every ``stride``-th output pixel)."""
    x = pad_crop(x, pad)
    channels = x.shape[1]
    # A true convolution flips the kernel; F.conv2d correlates, so flip it first.
    kernel = (f * gain).to(x.dtype).flip([0, 1])
    kernel = kernel[None, None].repeat(channels, 1, 1, 1)
    return F.conv2d(x, kernel, groups=channels, stride=stride)


def insert_zeros(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Upsample by placing each pixel at the top-left of a factor×factor cell of zeros."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, factor - 1, 0, 0, 0, factor - 1])
    return x.reshape(n, c, h * factor, w * factor)


def upsample2d(x: torch.Tensor, f: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Zero-insert then low-pass: the image-space upsampling of skip generators."""
    fw = f.shape[-1]
    p0, p1 = (fw + factor - 1) // 2, (fw - factor) // 2
    return fir_filter(insert_zeros(x, factor), f, (p0, p1, p0, p1), gain=factor * factor)


def conv2d_up2(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, padding: int,
               groups: int = 1) -> torch.Tensor:
    """Convolution whose output is upsampled ×2 with the FIR filter ``f``.

    Done as a stride-2 transposed convolution (weights arranged as its adjoint) followed by the
    low-pass filter, which equals zero-insertion + filter + convolution but costs a quarter.
    """
    out_ch, in_per_group, kh, kw = w.shape
    fw = f.shape[-1]
    if kh == 1 and kw == 1:
        x = F.conv2d(x, w, groups=groups)
        return upsample2d(x, f)
    # Padding of the equivalent "upsample then filter then convolve" pipeline, then shifted to
    # account for the transposed convolution's own support.
    p0 = padding + (fw + 1) // 2 - (kw - 1)
    p1 = padding + (fw - 2) // 2 - (kw - 2)
    if groups == 1:
        wt = w.transpose(0, 1).contiguous()
    else:
        wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    trim = max(min(-p0, -p1), 0)
    x = F.conv_transpose2d(x, wt, stride=2, padding=trim, groups=groups)
    return fir_filter(x, f, (p0 + trim, p1 + trim, p0 + trim, p1 + trim), gain=4.0)


def conv2d_down2(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, padding: int) -> torch.Tensor:
    """Convolution whose output is downsampled ×2: low-pass first, then a stride-2 convolution."""
    fw = f.shape[-1]
    p0, p1 = padding + (fw - 1) // 2, padding + (fw - 2) // 2
    if w.shape[-1] == 1:  # 1×1: filter and drop pixels, then the cheap convolution
        x = fir_filter(x, f, (p0, p1, p0, p1))[:, :, ::2, ::2]
        return F.conv2d(x, w)
    return F.conv2d(fir_filter(x, f, (p0, p1, p0, p1)), w, stride=2)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    fw = f.shape[-1]
    p0, p1 = (fw - 1) // 2, (fw - 2) // 2
    return fir_filter(x, f, (p0, p1, p0, p1))[:, :, ::2, ::2]


def _modulate_activations(x, weight, styles, noise, up, padding, resample_filter, demodulate):
    """Modulated convolution with one shared weight: scale inputs by the styles, convolve,
    scale outputs by the demodulation coefficients."""
    batch, in_ch = styles.shape
    x = x * styles.reshape(batch, in_ch, 1, 1).to(x.dtype)
    w = weight.to(x.dtype)
    x = conv2d_up2(x, w, resample_filter, padding) if up else F.conv2d(x, w, padding=padding)
    if demodulate:
        dcoefs = ((weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)).square()
                  .sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        x = x * dcoefs.reshape(batch, -1, 1, 1).to(x.dtype)
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: torch.Tensor | None = None, up: bool = False, padding: int = 0,
                     resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True) -> torch.Tensor:
    """StyleGAN2's modulated convolution.

    ``weight`` may be shared ([O, I, k, k]) or per-sample ([N, O, I, k, k]); the latter lets a
    batch carry a different blend of weights per sample and runs as one grouped convolution.
    A shared weight with a batch scales the activations instead (same maths, one ordinary
    convolution): about 4x faster forward and backward on a CPU, which is what training needs.
    """
    batch = x.shape[0]
    shared = weight.ndim == 4
    if shared:
        weight = weight.unsqueeze(0)
    out_ch, in_ch, kh, kw = weight.shape[1:]
    if x.dtype == torch.float16 and demodulate:
        # Pre-normalise so the fp16 products below cannot overflow (demodulation undoes it).
        weight = weight * (1 / math.sqrt(in_ch * kh * kw)
                           / weight.abs().amax(dim=[2, 3, 4], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    if shared and batch > 1:
        return _modulate_activations(x, weight[0], styles, noise, up, padding, resample_filter,
                                     demodulate)
    w = weight * styles.reshape(batch, 1, -1, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        w = w * dcoefs.reshape(batch, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw).to(x.dtype)
    if up:
        x = conv2d_up2(x, w, resample_filter, padding, groups=batch)
    else:
        x = F.conv2d(x, w, padding=padding, groups=batch)
    x = x.reshape(batch, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x
