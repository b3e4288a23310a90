"""Many blends in one pass equal the same blends rendered one by one."""

import pytest
import torch

import stylemix
from stylemix import BlendSpec
from stylemix.batch_blend import BlendBatch
from stylemix.render import render_seeds, seed_to_z

SPECS = [BlendSpec.swap(8), BlendSpec.swap(16, low="base"), BlendSpec.linear(0.3),
         BlendSpec.smooth(16, 0.5, mapping="transfer"), BlendSpec.linear(0.6, mapping=0.5),
         BlendSpec.swap(16).with_channels(16, [1, 4], 0.0)]


def test_one_pass_equals_each_blend(nv_pair):
    batch = BlendBatch(*nv_pair)
    z = torch.cat([seed_to_z(s, nv_pair[0].z_dim) for s in range(len(SPECS))])
    images = batch.render(SPECS, z, psi=0.7)
    assert images.shape == (len(SPECS), 3, 64, 64)
    for i, spec in enumerate(SPECS):
        expected = render_seeds(stylemix.blend(*nv_pair, spec), [i], psi=0.7)[0]
        assert (images[i] - expected).abs().max() < 1e-4, spec.describe()


def test_shared_latent_and_errors(nv_pair):
    batch = BlendBatch(*nv_pair)
    z = seed_to_z(7, nv_pair[0].z_dim)
    images = batch.render(SPECS[:2], z)
    assert (images[0] - render_seeds(stylemix.blend(*nv_pair, SPECS[0]), [7])[0]).abs().max() < 1e-4
    with pytest.raises(stylemix.BlendSpecError, match="one latent or one per spec"):
        batch.render(SPECS[:3], torch.cat([z, z]))
    with pytest.raises(stylemix.BlendSpecError, match="at least one"):
        batch.weights([])
