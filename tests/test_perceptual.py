"""LPIPS from user-supplied weight files (here: random weights in the real files' layouts)."""

import pytest
import torch

import stylemix
from stylemix.perceptual import LPIPS, _CONV_LAYERS


@pytest.fixture
def weight_files(tmp_path):
    torch.manual_seed(0)
    vgg = {}
    for i, cin, cout in _CONV_LAYERS:  # torchvision's key names and shapes
        vgg[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3) * (2 / (9 * cin)) ** 0.5
        vgg[f"features.{i}.bias"] = torch.zeros(cout)
    vgg["classifier.0.weight"] = torch.zeros(4, 4)  # present in the real file, unused
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(vgg, tmp_path / "vgg16.pth")
    torch.save(lin, tmp_path / "vgg.pth")
    return tmp_path / "vgg16.pth", tmp_path / "vgg.pth"


def test_lpips_distance_properties(weight_files):
    lpips = LPIPS(*weight_files)
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    b = (a + 0.3 * torch.randn_like(a)).clamp(-1, 1)
    d_same, d_near, d_far = lpips(a, a), lpips(a, b), lpips(a, -a)
    assert d_same.shape == (2,) and torch.all(d_same.abs() < 1e-6)
    assert torch.all(d_near > 0) and torch.all(d_far > d_near)


def test_lpips_plugs_into_projection(weight_files, nv_pair):
    from stylemix.project import ProjectionConfig, project
    from stylemix.render import render_seeds
    G = nv_pair[0]
    result = project(G, render_seeds(G, [3]), ProjectionConfig(steps=5), perceptual=LPIPS(*weight_files))
    assert len(result.history) == 5 + 4  # 5 W steps, then ¾ as many W+ (rounded)


def test_missing_and_hostile_weight_files(tmp_path, weight_files):
    with pytest.raises(stylemix.StylemixError, match="weights not found"):
        LPIPS(tmp_path / "none.pth", weight_files[1])

    class Evil:
        def __reduce__(self):
            import os
            return os.system, ("touch " + str(tmp_path / "CANARY"),)

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(stylemix.StylemixError, match="cannot read VGG16 weights"):
        LPIPS(tmp_path / "evil.pth", weight_files[1])
    assert not (tmp_path / "CANARY").exists()
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(stylemix.StylemixError, match="do not fit"):
        LPIPS(tmp_path / "wrong.pth", weight_files[1])
