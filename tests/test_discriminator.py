"""The discriminator loads NVIDIA's D key for key and feeds projection with its features."""

import pytest
import torch
import torch.nn.functional as F

from stylemix.formats import load_discriminator, load_generator_and_discriminator
from stylemix.networks import ops
from stylemix.networks.discriminator import Discriminator, DiscriminatorConfig
from stylemix.project import ProjectionConfig, project
from stylemix.render import render_seeds
from conftest import NV_BASE, ROSINALITY


def test_fixture_discriminator_loads_key_for_key():
    D = load_discriminator(NV_BASE)
    assert isinstance(D, Discriminator) and D.config.channel_base == 1024
    scores = D(torch.randn(3, 3, 64, 64))
    assert scores.shape == (3, 1) and torch.isfinite(scores).all()
    assert [f.shape[-1] for f in D.features(torch.randn(1, 3, 64, 64))] == [32, 16, 8, 4]


def test_no_discriminator_where_the_file_has_none():
    assert load_discriminator(ROSINALITY) is None


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("c_dim", [0, 4])
def test_architectures(arch, c_dim):
    D = Discriminator(DiscriminatorConfig(c_dim=c_dim, img_resolution=32, architecture=arch,
                                          channel_base=256, channel_max=32))
    c = torch.eye(4)[:2] if c_dim else None
    assert D(torch.randn(2, 3, 32, 32), c).shape == (2, 1)
    assert ("b16.fromrgb.weight" in D.state_dict()) == (arch == "skip")


@pytest.mark.parametrize("k", [1, 3])
def test_downsampling_conv_equals_filter_convolve_subsample(k):
    # Reference: full low-pass, full convolution, then every other pixel from a fixed phase.
    torch.manual_seed(0)
    x, w, f = torch.randn(2, 4, 16, 16), torch.randn(5, 4, k, k), ops.make_fir_filter()
    full = F.conv2d(ops.fir_filter(x, f, (3, 3, 3, 3)), w)
    phase = 2 if k == 1 else 1
    ref = full[:, :, phase::2, phase::2][:, :, :8, :8]
    fast = ops.conv2d_down2(x, w, f, padding=k // 2)
    assert fast.shape == (2, 5, 8, 8) and torch.allclose(fast, ref, atol=1e-5)


def test_projection_uses_discriminator_features(nv_pair):
    G, D = nv_pair[0], load_discriminator(NV_BASE)
    target = render_seeds(G, [4])
    cfg = ProjectionConfig(steps=5)
    plain = project(G, target, cfg)
    with_d = project(G, target, cfg, discriminator=D)
    assert with_d.history[0]["loss"] > plain.history[0]["loss"]  # the extra term is in the loss
    assert not torch.equal(with_d.ws, plain.ws)


def test_generator_and_discriminator_from_one_read(nv_pair):
    G, D = load_generator_and_discriminator(NV_BASE)
    assert isinstance(D, Discriminator)
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), nv_pair[0].state_dict().values()))
    G2, none = load_generator_and_discriminator(ROSINALITY)
    assert none is None and G2.source.format == "rosinality"
