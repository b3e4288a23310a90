"""The generator reproduces NVIDIA's renders and behaves correctly in every configuration."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F

import stylemix
from stylemix.networks import ops
from conftest import NV_BASE, NV_TRANSFER, random_generator, render

TOL = 1e-4


@pytest.mark.parametrize("label,path", [("base", NV_BASE), ("transfer", NV_TRANSFER)])
@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_matches_nvidia_renders(renders, label, path, psi):
    G = stylemix.load_generator(path)
    z = torch.from_numpy(renders["z"])
    ws = G.mapping(z, None, truncation_psi=psi)
    assert (ws - torch.from_numpy(renders[f"{label}_psi{psi}_ws"])).abs().max() <= TOL
    img = G.synthesis(ws, noise_mode="const")
    assert img.dtype == torch.float32 and img.shape == (4, 3, 64, 64)
    assert (img - torch.from_numpy(renders[f"{label}_psi{psi}_img"])).abs().max() <= TOL


def test_public_attributes(nv_pair):
    G = nv_pair[0]
    assert (G.z_dim, G.c_dim, G.w_dim, G.img_resolution, G.num_ws) == (64, 0, 64, 64, 10)
    assert not G.training and G.block_resolutions == [4, 8, 16, 32, 64]


def _naive_up_conv(x, w, f):
    """Reference: zero-insert, full true convolution with w, full low-pass (gain 4), crop to 2H."""
    k, h = w.shape[-1], 2 * x.shape[-1]
    full = F.conv2d(F.pad(ops.insert_zeros(x, 2), [4] * 4), w.flip([2, 3]))
    full = ops.fir_filter(full, f, (0, 0, 0, 0), gain=4)
    off = 2 - k // 2  # where the "same"-padded output starts inside the full one
    return full[:, :, off:off + h, off:off + h]


@pytest.mark.parametrize("k", [1, 3])
def test_transposed_upsampling_conv_equals_naive(k):
    torch.manual_seed(0)
    x, w = torch.randn(2, 5, 8, 8), torch.randn(6, 5, k, k)
    f = ops.make_fir_filter()
    fast = ops.conv2d_up2(x, w, f, padding=k // 2)
    assert fast.shape == (2, 6, 16, 16)
    assert torch.allclose(fast, _naive_up_conv(x, w, f), atol=1e-5)


def test_modulated_conv_grouped_equals_per_sample_loop():
    torch.manual_seed(1)
    x, weight, styles = torch.randn(3, 4, 8, 8), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    out = ops.modulated_conv2d(x, weight, styles, padding=1)
    for i in range(3):
        w = weight * styles[i].reshape(1, -1, 1, 1)
        w = w * (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
        assert torch.allclose(out[i], F.conv2d(x[i:i + 1], w, padding=1)[0], atol=1e-5)


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("c_dim", [0, 3])
def test_architectures_and_conditioning(arch, c_dim):
    G = random_generator(architecture=arch, c_dim=c_dim, conv_clamp=256, num_fp16_res=2)
    names = set(G.state_dict())
    assert ("synthesis.b8.torgb.weight" in names) == (arch == "skip")
    assert ("synthesis.b8.skip.weight" in names) == (arch == "resnet")
    assert ("mapping.embed.weight" in names) == (c_dim > 0)
    z = torch.randn(2, 16)
    c = torch.eye(3)[:2] if c_dim else None
    img = render(G, z, c=c)
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()
    if c_dim:
        other = render(G, z, c=torch.eye(3)[1:3])
        assert not torch.allclose(img, other)
        with pytest.raises(ValueError, match="conditional"):
            G.mapping(z, None)


def test_channel_formula_and_resolutions():
    G = random_generator(img_resolution=128, channel_base=1024, channel_max=64)
    cfg = G.config
    assert [cfg.channels_at(r) for r in G.block_resolutions] == [64, 64, 64, 32, 16, 8]
    assert G.synthesis.b128.conv1.weight.shape == (8, 8, 3, 3)
    assert G.num_ws == 2 * 6


def test_truncation_psi_and_cutoff():
    G = random_generator()
    z = torch.randn(3, 16)
    full = G.mapping(z)
    assert torch.allclose(G.mapping(z, truncation_psi=0), G.mapping.w_avg.expand_as(full))
    cut = G.mapping(z, truncation_psi=0.5, truncation_cutoff=3)
    assert torch.allclose(cut[:, 3:], full[:, 3:])
    assert torch.allclose(cut[:, :3], G.mapping.w_avg.lerp(full[:, :3], 0.5))


def test_noise_modes():
    G = random_generator()
    z = torch.randn(1, 16)
    const = render(G, z, noise_mode="const")
    assert torch.equal(const, render(G, z, noise_mode="const"))
    assert not torch.allclose(const, render(G, z, noise_mode="none"))
    assert not torch.allclose(render(G, z, noise_mode="random"), render(G, z, noise_mode="random"))
    with pytest.raises(ValueError, match="noise_mode"):
        render(G, z, noise_mode="loud")


def test_conv_clamp_bounds_activations():
    G = random_generator(conv_clamp=0.05)
    acts = []
    hook = G.synthesis.b16.conv1.register_forward_hook(lambda m, i, o: acts.append(o))
    render(G, torch.randn(2, 16) * 10)
    hook.remove()
    assert acts[0].abs().max() <= 0.05 + 1e-6


def test_bad_latent_shapes_are_clear():
    G = random_generator()
    with pytest.raises(ValueError, match=r"z must have shape \[N, 16\]"):
        G.mapping(torch.randn(2, 15))
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.randn(2, 3, 16))


def test_unsupported_config_is_named():
    with pytest.raises(stylemix.UnsupportedModelError, match="architecture 'fancy'"):
        stylemix.GeneratorConfig(z_dim=4, c_dim=0, w_dim=4, img_resolution=32, architecture="fancy")
    with pytest.raises(stylemix.UnsupportedModelError, match="power of two"):
        stylemix.GeneratorConfig(z_dim=4, c_dim=0, w_dim=4, img_resolution=48)
    with pytest.raises(stylemix.ModelLoadError, match="512 px block would have no channels"):
        stylemix.GeneratorConfig(z_dim=4, c_dim=0, w_dim=4, img_resolution=1024, channel_base=256)


def test_config_f_1024_has_nvidia_parameter_count():
    # NVIDIA's FFHQ 1024 generator (config-f) has 30,370,060 parameters and 18 ws.
    cfg = stylemix.GeneratorConfig(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024,
                                   channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256)
    G = stylemix.Generator(cfg)
    assert sum(p.numel() for p in G.parameters()) == 30_370_060
    assert G.num_ws == 18


def test_renders_at_1024():
    G = random_generator(img_resolution=1024, channel_base=16384, channel_max=16)
    img = render(G, torch.randn(1, 16))
    assert img.shape == (1, 3, 1024, 1024) and torch.isfinite(img).all()


def test_half_precision_blocks_stay_close_to_float32():
    """The fp16 path GPUs take for the top num_fp16_res blocks (pre-normalised modulation,
    conv_clamp), run on the CPU: within 0.02 mean / 0.25 max of float32 in [-1, 1] units."""
    G = random_generator(num_fp16_res=3, conv_clamp=256)
    z = torch.from_numpy(np.random.RandomState(0).randn(4, G.z_dim).astype(np.float32))
    with torch.no_grad():
        full = G(z, truncation_psi=0.7)
        for block in G.synthesis.children():
            block.half_on_cpu = True
        half = G(z, truncation_psi=0.7)
        forced = G(z, truncation_psi=0.7, force_fp32=True)
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    assert not torch.equal(half, full)  # the half path really ran
    assert (half - full).abs().mean() < 0.02 and (half - full).abs().max() < 0.25
    assert torch.equal(forced, full)
