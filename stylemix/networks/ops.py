"""Small numeric building blocks of StyleGAN2: activations, FIR resampling, modulated convolution.

Everything is plain PyTorch (no custom kernels to compile), so it runs on any CPU or GPU.
The functions up to ``modulated_conv2d`` are the plain path (autograd, fp16, any device); the
``fast_*`` functions at the end are the CPU inference path, which computes the same numbers
(within float32 rounding) with fewer passes over memory.
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


# -- CPU inference fast path ----------------------------------------------------------------
# Rendering on a CPU is bound by memory traffic as much as by arithmetic: every elementwise op
# on a 128×256×256 map is a 32 MB pass, and a fresh tensor of that size costs page faults on top.
# So the fast path keeps activations channels-last (oneDNN's convolutions and depthwise filters
# run without layout reorders), folds demodulation, activation gain and bias into the
# convolution where the maths allows, and finishes with in-place noise / activation / clamp.
# It is only taken where nothing needs gradients (in-place ops would break autograd).

PRECISIONS = {"float32": torch.float32, "bf16": torch.bfloat16}
# Activations f with f(g·x) = g·f(x) for g > 0: their gain can be folded into the convolution.
_HOMOGENEOUS = {"linear", "relu", "lrelu"}


def fast_path_applies(x: torch.Tensor, *tensors: torch.Tensor) -> bool:
    """True for eager CPU inference in float32/bf16 with no autograd graph to keep. Under
    ``torch.compile`` the plain path is traced: inductor fuses it itself."""
    if torch.compiler.is_compiling():
        return False
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.bfloat16):
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, *tensors)):
        return False
    # functorch transforms (vmap) wrap tensors; their batching rules cover the plain path.
    return not torch._C._functorch.is_functorch_wrapped_tensor(x)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _depthwise_kernel(f: torch.Tensor, channels: int, gain: float, dtype) -> torch.Tensor:
    """``f`` (a true-convolution FIR filter) as a depthwise correlation kernel [C, 1, kh, kw]."""
    return (f * gain).flip([0, 1]).to(dtype)[None, None].expand(channels, 1, *f.shape).contiguous()


def weight_energy(weight: torch.Tensor) -> torch.Tensor:
    """Σ_k w[o, i, k]² as [O, I] float32: all that demodulation needs from a conv weight."""
    out_ch, in_ch = weight.shape[:2]
    return torch.linalg.vector_norm(weight.float().reshape(out_ch, in_ch, -1), dim=-1).square()


def fast_demodulation(weight: torch.Tensor, styles: torch.Tensor,
                      energy: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN2's demodulation coefficients [N, O] = rsqrt(Σ_{i,k} (w[o,i,k]·s[n,i])² + 1e-8),
    computed as rsqrt(s² @ Σ_k w²ᵀ + 1e-8): no pass over the weight at all when ``energy``
    (:func:`weight_energy`, [O, I]) is given, else one pass instead of N."""
    energy = weight_energy(weight) if energy is None else energy
    return (styles.float().square() @ energy.t() + 1e-8).rsqrt()


class WeightDerived:
    """Tensors that inference derives from a weight alone (its :func:`weight_energy`, its
    transposed layout for an upsampling convolution), kept until the weight changes.

    A render otherwise spends a third of its time re-deriving them from weights that only
    change when a blend is recomposed.  The key is the weight's identity, storage, dtype and
    version counter: every in-place write bumps the counter (a recomposition's ``lerp(out=)``,
    an optimizer step, ``load_state_dict``; views such as the engine's share their base's), and
    ``Module.to`` swaps the storage.  Only writes through ``.data`` go unseen: do not use them
    on a generator's weights.  Holding the weight keeps its storage from being reused."""

    def __init__(self):
        self._weight: torch.Tensor | None = None
        self._key: tuple = ()
        self._values: dict[str, torch.Tensor] = {}

    @staticmethod
    def _storage(weight: torch.Tensor) -> tuple:
        return weight.data_ptr(), weight.dtype, weight.device

    def get(self, weight: torch.Tensor, name: str, derive) -> torch.Tensor:
        key = (*self._storage(weight), weight._version)
        if self._weight is not weight or self._key != key:
            self._weight, self._key, self._values = weight, key, {}
        if name not in self._values:
            self._values[name] = derive(weight)
        return self._values[name]

    def vouch(self, weight: torch.Tensor) -> None:
        """Keep what was derived although the weight's version counter moved: for a caller that
        knows it wrote only other tensors sharing that counter (views of one buffer, as the
        blend engine's parameters are)."""
        if self._weight is weight and self._key[:3] == self._storage(weight):
            self._key = (*self._storage(weight), weight._version)

    def __deepcopy__(self, memo):
        return WeightDerived()  # a copy of a module starts empty (its weight is a new tensor)


def fast_synthesis_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                        bias: torch.Tensor, noise: torch.Tensor | None, up: bool, padding: int,
                        resample_filter: torch.Tensor | None, activation: str = "lrelu",
                        gain: float | None = None, clamp: float | None = None,
                        demodulate: bool = True, derived: WeightDerived | None = None) -> torch.Tensor:
    """A whole SynthesisLayer after its affine: modulated conv (upsampling ×2 with the FIR filter
    when ``up``), noise, bias, activation, gain, clamp — StyleGAN2's (Karras et al. 2020, eq. 1-3)
    sequence, for inference on a CPU.

    x: [N, I, H, W] (any memory format; float32 or bf16, which sets the compute dtype);
    weight: [O, I, k, k] shared by the batch; styles: [N, I]; bias: [O]; noise: broadcastable to
    [N, 1, H', W'] or None; ``gain`` is the activation's gain times the layer's extra gain
    (None: the activation's default, as in ``bias_act``).
    Returns [N, O, H', W'] channels-last, H' = 2H when ``up`` else H.

    With one sample and a weight smaller than the input map, the styles and demodulation are
    folded into the weight (as NVIDIA's fused modconv does); otherwise the input is scaled by
    the styles and the output by the coefficients, so the convolution runs on the shared weight.
    Maps of 32×32 pixels and more are kept channels-last (oneDNN is faster there; below, the
    plain layout is).  ``derived`` (the layer's :class:`WeightDerived`) keeps what depends on
    the weight alone between calls.
    """
    derived = derived or WeightDerived()
    dtype = x.dtype
    gain = ACTIVATIONS[activation][1] if gain is None else gain
    n, in_ch = styles.shape
    out_ch = weight.shape[0]
    x = channels_last(x) if n * x.shape[2] * x.shape[3] >= 1024 else x.contiguous()
    folded = activation in _HOMOGENEOUS  # gain moves in front of the activation
    b = bias.float() * gain if folded else bias.float()
    # [N, O], from the weight's kept energy: no pass over the weight.
    demod = None
    if demodulate:
        demod = fast_demodulation(weight, styles, derived.get(weight, "energy", weight_energy))
    if n == 1 and weight.numel() <= x[0].numel():
        # Per-sample weight, NVIDIA's order: w·s, then each output row over its own norm.
        w = weight.float() * styles.float().reshape(1, -1, 1, 1)
        scale = w.new_full([out_ch], gain if folded else 1.0)
        if demod is not None:
            scale = scale * demod[0]
        if up:  # into the transposed convolution's [I, O, k, k] layout in the same pass
            wt = torch.empty([in_ch, out_ch, *weight.shape[2:]], dtype=dtype)
            w = torch.mul(w.transpose(0, 1), scale.reshape(1, -1, 1, 1), out=wt)
        else:
            w = w.mul_(scale.reshape(-1, 1, 1, 1)).to(dtype)
        y = _fast_conv(x, w, b.to(dtype), up, padding, resample_filter)
    else:
        scale = demod if demod is not None else styles.new_ones([n, out_ch])
        if folded:
            scale = scale * gain  # [N, O]: everything that multiplies the conv output
        xs = x * styles.to(dtype)[:, :, None, None]
        layout = "transposed" if up else "plain"  # [I, O, k, k] for the transposed convolution
        w = derived.get(weight, f"{layout} {dtype}",
                        lambda wt: (wt.transpose(0, 1) if up else wt).to(dtype).contiguous())
        y = _fast_conv(xs, w, None, up, padding, resample_filter)
        y.mul_(scale.to(dtype)[:, :, None, None])
        y.add_(b.to(dtype)[None, :, None, None])
    if noise is not None:
        y.add_((noise * gain if folded else noise).to(dtype))
    if activation == "lrelu":
        F.leaky_relu_(y, 0.2)
    elif activation == "relu":
        F.relu_(y)
    elif activation != "linear":
        func = ACTIVATIONS[activation][0]
        y = func(y) * gain
    if clamp is not None and clamp >= 0:
        y.clamp_(-clamp, clamp)
    return y


def _fast_conv(x, w, bias, up: bool, padding: int, f):
    """Convolution (``up``: stride-2 transposed convolution with the [I, O, k, k] weight ``w``,
    then the FIR low-pass with gain 4), adding ``bias`` at the end. Channels-last in and out."""
    if not up:
        return F.conv2d(x, w, bias, padding=padding)
    kw, fw = w.shape[-1], f.shape[-1]
    if kw == 1:  # 1×1: convolve at the low resolution, then upsample the result
        y = F.conv2d(x, w.transpose(0, 1), None)
        y = fast_upsample2d(y, f)
        return y if bias is None else y.add_(bias[None, :, None, None])
    # The same padding arithmetic as conv2d_up2 (the plain path), with the FIR filter's own
    # zero padding done by the depthwise convolution.
    p0 = padding + (fw + 1) // 2 - (kw - 1)
    p1 = padding + (fw - 2) // 2 - (kw - 2)
    trim = max(min(-p0, -p1), 0)
    y = F.conv_transpose2d(x, w, stride=2, padding=trim)
    p0, p1 = p0 + trim, p1 + trim
    kernel = _depthwise_kernel(f, y.shape[1], 4.0, y.dtype)
    if p0 == p1 and p0 >= 0:
        return F.conv2d(y, kernel, bias, padding=p0, groups=y.shape[1])
    y = pad_crop(y, (p0, p1, p0, p1))
    return F.conv2d(y.contiguous(memory_format=x.suggest_memory_format()), kernel, bias,
                    groups=y.shape[1])


def fast_upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """``upsample2d`` (zero-insert ×2, then the FIR filter with gain 4) as one depthwise
    stride-2 transposed convolution: no zero-filled intermediate."""
    fw = f.shape[-1]
    if fw % 2 or f.shape[0] != fw:
        return upsample2d(x, f)
    channels = x.shape[1]
    # Transposed conv output o = 2i - P + t takes tap t of the kernel; upsample2d's output o
    # takes tap o + p0 - 2i of the flipped filter, p0 = fw/2: the same kernel, P = fw/2 - 1.
    kernel = (f * 4).to(x.dtype)[None, None].expand(channels, 1, fw, fw).contiguous()
    return F.conv_transpose2d(x, kernel, stride=2, padding=fw // 2 - 1, groups=channels)


def fast_to_rgb(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, bias: torch.Tensor,
                clamp: float | None = None) -> torch.Tensor:
    """ToRGB for inference: the 1×1 modulated convolution without demodulation as one batched
    matrix product over channels-last pixels (the per-sample weight is 3×C, the map is not
    copied), plus bias, then clamp. x: [N, C, H, W]; weight: [O, C, 1, 1]; styles: [N, C]
    (already times the weight gain). Returns float32 [N, O, H, W]."""
    n, c, h, w = x.shape
    x = channels_last(x)
    pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view of the channels-last memory
    per_sample = (weight[:, :, 0, 0][None] * styles.float()[:, None, :]).transpose(1, 2)
    y = torch.baddbmm(bias.to(x.dtype)[None, None, :], pixels, per_sample.to(x.dtype))
    y = y.float().reshape(n, h, w, -1).permute(0, 3, 1, 2)
    if clamp is not None and clamp >= 0:
        y = y.clamp_(-clamp, clamp)
    return y
