"""The CPU inference fast path (channels-last, folded modulation, in-place epilogues, bf16
preview) computes what the plain float32 path computes."""

import numpy as np
import pytest
import torch

import stylemix
from stylemix.networks import layers, ops
from conftest import random_generator, render

TOL = 1e-5


def _plain_layer(x, weight, styles, bias, noise, up, activation, gain, clamp, demodulate=True):
    y = ops.modulated_conv2d(x, weight, styles, noise, up=up, padding=weight.shape[-1] // 2,
                             resample_filter=ops.make_fir_filter(), demodulate=demodulate)
    return ops.bias_act(y, bias, activation, gain=gain, clamp=clamp)


def _close(fast, plain, tol=TOL):
    scale = max(plain.abs().max().item(), 1.0)
    return (fast.float() - plain.float()).abs().max().item() <= tol * scale


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("in_ch,size", [(4, 8), (24, 4)])  # weight smaller / larger than the map
@pytest.mark.parametrize("activation,clamp", [("lrelu", 0.5), ("linear", None), ("tanh", None)])
def test_synthesis_conv_equals_plain(batch, up, in_ch, size, activation, clamp):
    torch.manual_seed(0)
    x = torch.randn(batch, in_ch, size, size)
    weight, styles = torch.randn(6, in_ch, 3, 3), torch.randn(batch, in_ch)
    bias = torch.randn(6)
    out = size * 2 if up else size
    noise = torch.randn(batch, 1, out, out) * 0.3
    gain = ops.ACTIVATIONS[activation][1] * 0.7
    plain = _plain_layer(x, weight, styles, bias, noise, up, activation, gain, clamp)
    with torch.no_grad():
        fast = ops.fast_synthesis_conv(x, weight, styles, bias, noise, up=up, padding=1,
                                       resample_filter=ops.make_fir_filter(),
                                       activation=activation, gain=gain, clamp=clamp)
    assert fast.shape == plain.shape == (batch, 6, out, out)
    assert _close(fast, plain)
    if clamp is not None:
        assert fast.abs().max() <= clamp


@pytest.mark.parametrize("batch", [1, 2])
def test_kernel_1_and_no_noise_equal_plain(batch):
    torch.manual_seed(1)
    x, weight = torch.randn(batch, 5, 8, 8), torch.randn(7, 5, 1, 1)
    styles, bias = torch.randn(batch, 5), torch.randn(7)
    for up in (False, True):
        plain = _plain_layer(x, weight, styles, bias, None, up, "lrelu", 2 ** 0.5, None)
        fast = ops.fast_synthesis_conv(x, weight, styles, bias, None, up=up, padding=0,
                                       resample_filter=ops.make_fir_filter(), gain=2 ** 0.5)
        assert _close(fast, plain)


def test_to_rgb_equals_plain():
    torch.manual_seed(2)
    x, weight = torch.randn(3, 16, 8, 8), torch.randn(3, 16, 1, 1)
    styles, bias = torch.randn(3, 16), torch.randn(3)
    plain = ops.bias_act(ops.modulated_conv2d(x, weight, styles, demodulate=False), bias, clamp=0.8)
    fast = ops.fast_to_rgb(x, weight, styles, bias, clamp=0.8)
    assert fast.dtype == torch.float32 and fast.shape == plain.shape
    assert _close(fast, plain)


def test_upsample_and_demodulation_equal_plain():
    torch.manual_seed(3)
    x, f = torch.randn(2, 3, 9, 9), ops.make_fir_filter()
    assert _close(ops.fast_upsample2d(x, f), ops.upsample2d(x, f))
    weight, styles = torch.randn(5, 4, 3, 3), torch.randn(2, 4)
    w = weight[None] * styles[:, None, :, None, None]
    expected = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    assert torch.allclose(ops.fast_demodulation(weight, styles), expected, rtol=1e-5)


def _plain_render(G, ws, **kwargs):
    """The plain path: an autograd graph is wanted, so the fast path stands aside."""
    with torch.enable_grad():
        return G.synthesis(ws.clone().requires_grad_(True), **kwargs).detach()


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("batch", [1, 3])
def test_generator_fast_path_equals_plain(arch, batch, monkeypatch):
    G = random_generator(architecture=arch, conv_clamp=0.6, img_resolution=64,
                         channel_base=512, channel_max=32)
    z = torch.randn(batch, 16, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        ws = G.mapping(z, truncation_psi=0.7)
    calls = []
    fast_conv = layers.fast_synthesis_conv
    monkeypatch.setattr(layers, "fast_synthesis_conv", lambda *a, **k: calls.append(1) or fast_conv(*a, **k))
    plain = _plain_render(G, ws)
    assert not calls  # the plain render really took the plain path
    with torch.no_grad():
        fast = G.synthesis(ws)
    assert len(calls) == 2 * 5 - 1  # ... and this one the fast path, every layer
    assert fast.is_contiguous() and fast.dtype == torch.float32
    assert _close(fast, plain)


def test_random_noise_and_fp16_blocks_keep_their_paths():
    G = random_generator(num_fp16_res=2, conv_clamp=256)
    z = torch.randn(2, 16)
    assert not torch.allclose(render(G, z, noise_mode="random"), render(G, z, noise_mode="random"))
    for block in G.synthesis.children():
        block.half_on_cpu = True
    assert not ops.fast_path_applies(torch.zeros(1, dtype=torch.float16))
    with torch.no_grad():
        half = G.synthesis(G.mapping(z))
    assert half.dtype == torch.float32 and torch.isfinite(half).all()


def test_fast_path_reads_weights_rewritten_in_place():
    """The engine rewrites parameters in place between renders: what the fast path keeps per
    weight (its energy, its transposed layout) must follow, in both of its branches (b8's
    upsampling conv has a weight larger than its map, b32's conv1 a smaller one)."""
    G = random_generator(channel_base=1024, channel_max=64)
    z = torch.randn(1, 16)
    before = render(G, z)
    with torch.no_grad():
        G.synthesis.b8.conv0.weight.mul_(-1.5)
        G.synthesis.b32.conv1.weight.add_(0.3)
        G.synthesis.b32.torgb.weight.add_(0.3)
    after = render(G, z)
    assert not torch.allclose(before, after)
    assert _close(after, _plain_render(G, G.mapping(z).detach()))
    with torch.no_grad():  # a lerp into a flat buffer the parameters are views of (the engine's way)
        flat = torch.cat([G.synthesis.b8.conv0.weight.reshape(-1), G.synthesis.b32.conv1.weight.reshape(-1)])
        n = G.synthesis.b8.conv0.weight.numel()
        G.synthesis.b8.conv0.weight = torch.nn.Parameter(flat[:n].view_as(G.synthesis.b8.conv0.weight),
                                                         requires_grad=False)
        G.synthesis.b32.conv1.weight = torch.nn.Parameter(flat[n:].view_as(G.synthesis.b32.conv1.weight),
                                                          requires_grad=False)
        render(G, z)
        torch.lerp(flat, torch.zeros_like(flat), 0.5, out=flat)
    assert _close(render(G, z), _plain_render(G, G.mapping(z).detach()))


def test_weight_derived_is_kept_until_the_weight_changes():
    derived, calls = ops.WeightDerived(), []
    weight = torch.randn(4, 3, 3, 3)

    def energy(w):
        calls.append(1)
        return ops.weight_energy(w)

    first = derived.get(weight, "energy", energy)
    assert derived.get(weight, "energy", energy) is first and len(calls) == 1
    weight.mul_(2)  # an in-place write
    assert torch.allclose(derived.get(weight, "energy", energy), first * 4) and len(calls) == 2
    other = weight.clone()  # another tensor, equal values
    derived.get(other, "energy", energy)
    assert len(calls) == 3
    module = torch.nn.Conv2d(3, 4, 3)
    derived.get(module.weight, "energy", energy)
    module.to(torch.float64)  # the same Parameter object, new storage
    assert derived.get(module.weight, "energy", energy).dtype == torch.float32 and len(calls) == 5


def test_run_blocks_leaves_its_inputs_alone():
    """channels.py renders the blocks above r many times from one (x, img)."""
    G = random_generator()
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, 16))
        x, img = G.synthesis.run_blocks(ws, None, None, [4, 8])
        x0, img0 = x.clone(), img.clone()
        first = G.synthesis.run_blocks(ws, x, img, [16, 32])[1]
        second = G.synthesis.run_blocks(ws, x, img, [16, 32])[1]
    assert torch.equal(x, x0) and torch.equal(img, img0) and torch.equal(first, second)


def test_bf16_preview_is_close_to_float32():
    G = random_generator(img_resolution=64, channel_base=512, channel_max=32, conv_clamp=256)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    full = render(G, z, 0.7)
    bf16 = render(G, z, 0.7, precision="bf16")
    assert bf16.dtype == torch.float32 and bf16.shape == full.shape
    assert not torch.equal(bf16, full)  # it really ran in bf16
    assert (bf16 - full).abs().mean() < 0.02 and (bf16 - full).abs().max() < 0.25
    G.synthesis.precision = "bf16"
    assert torch.equal(render(G, z, 0.7), bf16)
    with pytest.raises(ValueError, match="precision must be one of float32, bf16"):
        render(G, z, precision="fp8")


def test_config_f_layer_shapes_take_both_modulation_modes():
    """At 256 px config-f sizes the top layers modulate weights and the low ones activations
    (batch 1); both agree with the plain path on a real-size layer."""
    torch.manual_seed(4)
    for in_ch, size in [(512, 8), (64, 64)]:
        x, weight = torch.randn(1, in_ch, size, size), torch.randn(64, in_ch, 3, 3)
        styles, bias = torch.randn(1, in_ch), torch.randn(64)
        plain = _plain_layer(x, weight, styles, bias, None, False, "lrelu", 2 ** 0.5, 256)
        fast = ops.fast_synthesis_conv(x, weight, styles, bias, None, up=False, padding=1,
                                       resample_filter=None, gain=2 ** 0.5, clamp=256)
        assert _close(fast, plain)


def test_fast_path_stands_aside_for_autograd_half_vmap_and_compile(monkeypatch):
    x, w = torch.zeros(1, 2, 4, 4), torch.zeros(3, 2, 3, 3)
    assert ops.fast_path_applies(x, w)
    trainable = w.clone().requires_grad_(True)
    assert not ops.fast_path_applies(x, trainable)  # a graph is being recorded
    with torch.no_grad():
        assert ops.fast_path_applies(x, trainable)
    assert not ops.fast_path_applies(x.half(), w)
    assert not torch.func.vmap(lambda t: torch.tensor(ops.fast_path_applies(t)))(x[None])[0]
    # Under torch.compile the plain path is traced (the engine's compile test checks the result).
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert not ops.fast_path_applies(x, w)


def test_same_picture_allows_rounding_and_nothing_more():
    from measures import same_picture
    rng = np.random.default_rng(0)
    a = rng.integers(1, 255, (64, 64, 3), dtype=np.uint8)
    b = a.copy()
    b.flat[:10] += 1                      # 10 of 12288 values one level apart: rounding
    b.flat[10] += 2                       # (two, after a Lanczos enlargement)
    assert same_picture(a, b)
    c = a.copy()
    c.flat[0] += 3                        # one value three levels apart: not rounding
    assert not same_picture(a, c)
    d = a.copy()
    d.flat[:200] += 1                     # 1.6 % of values apart: another picture
    assert not same_picture(a, d)
    assert not same_picture(a, a[:32])    # another size
