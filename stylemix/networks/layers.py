"""StyleGAN2 layers with NVIDIA's parameter and buffer names, so their state dicts map 1:1."""

from __future__ import annotations

import math

import torch
from torch import nn

import torch.nn.functional as F

from .ops import (ACTIVATIONS, WeightDerived, bias_act, conv2d_down2, conv2d_up2, fast_path_applies,
                  fast_synthesis_conv, fast_to_rgb, make_fir_filter, modulated_conv2d)


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: weights are stored unscaled, scaled at run time."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation: str = "linear", lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The gain scales the (small) output, not a copy of the (large) weight at every call.
        y = x.matmul(self.weight.to(x.dtype).t()) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return y if b is None else y + b
        return bias_act(y, b, self.activation)


class SynthesisLayer(nn.Module):
    """Modulated 3×3 convolution (optionally upsampling ×2), noise, bias, activation, clamp."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True,
                 activation: str = "lrelu", resample_filter=(1, 3, 3, 1),
                 conv_clamp: float | None = None, size: tuple[int, int] | None = None):
        super().__init__()
        self.resolution = resolution
        self.size = tuple(size) if size is not None else (resolution, resolution)  # output (H, W)
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation][1]
        self.register_buffer("resample_filter", make_fir_filter(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(list(self.size)))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.derived = WeightDerived()  # the fast path's per-weight tensors, kept between renders

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                gain: float = 1.0, noise_map: torch.Tensor | None = None) -> torch.Tensor:
        """``noise_map`` ([R, R]) replaces ``noise_const`` for this call in "const" mode: how a
        caller renders with its own maps (a projection's) without touching the shared module."""
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "const" and noise_map is not None:
            noise = noise_map.to(x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, *self.size], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        if fast_path_applies(x, self.weight, styles):
            return fast_synthesis_conv(x, self.weight, styles, self.bias, noise, up=self.up == 2,
                                       padding=self.padding, resample_filter=self.resample_filter,
                                       activation=self.activation, gain=self.act_gain * gain,
                                       clamp=clamp, derived=self.derived)
        x = modulated_conv2d(x, self.weight, styles, noise,
                             up=self.up == 2, padding=self.padding,
                             resample_filter=self.resample_filter)
        return bias_act(x, self.bias, self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1×1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        if fast_path_applies(x, self.weight, styles) and self.weight.shape[-1] == 1:
            return fast_to_rgb(x, self.weight, styles, self.bias, clamp=self.conv_clamp)
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class Conv2dLayer(nn.Module):
    """Plain equalized-lr convolution, optionally resampling ×2 (resnet skips, discriminator)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter=(1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.activation = activation
        self.up, self.down = up, down
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation][1]
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.register_buffer("resample_filter", make_fir_filter(resample_filter))
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        if self.up == 2:
            x = conv2d_up2(x, w, self.resample_filter, self.padding)
        elif self.down == 2:
            x = conv2d_down2(x, w, self.resample_filter, self.padding)
        else:
            x = F.conv2d(x, w, padding=self.padding)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, self.activation, gain=self.act_gain * gain, clamp=clamp)
