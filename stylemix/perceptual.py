"""LPIPS (VGG16) perceptual distance from weight files the user already has — nothing downloads.

Point it at torchvision's VGG16 state dict (``vgg16-397923af.pth``; only ``features.*`` is used)
and the LPIPS v0.1 linear layers (the ``lpips`` package's ``weights/v0.1/vgg.pth``).  Both are
read with weights-only loading.  The network here is our own plain VGG16 trunk.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import StylemixError

# torchvision's vgg16.features: conv indices, and the ReLU outputs LPIPS compares.
_CONV_LAYERS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256),
                (12, 256, 256), (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512),
                (24, 512, 512), (26, 512, 512), (28, 512, 512)]
_POOL_AFTER = {2, 7, 14, 21}        # max-pool follows these conv indices
_TAPS = {2, 7, 14, 21, 28}          # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def _read_state(path: str | Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise StylemixError(f"{what} weights not found at {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or hostile: never fall back to unsafe loading
        raise StylemixError(f"cannot read {what} weights from {path.name}: {str(exc)[:120]}") from None
    if not isinstance(state, dict):
        raise StylemixError(f"{path.name} does not hold a {what} state dict")
    return state


class LPIPS(nn.Module):
    """distance(a, b) for images in [-1, 1], shape (N, 3, H, W) → (N,)."""

    def __init__(self, vgg_path: str | Path, lin_path: str | Path):
        super().__init__()
        self.features = nn.ModuleDict({str(i): nn.Conv2d(cin, cout, 3, padding=1)
                                       for i, cin, cout in _CONV_LAYERS})
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in (64, 128, 256, 512, 512))
        vgg = _read_state(vgg_path, "VGG16")
        lin = _read_state(lin_path, "LPIPS linear")
        try:
            for i, _, _ in _CONV_LAYERS:
                self.features[str(i)].weight.data.copy_(vgg[f"features.{i}.weight"])
                self.features[str(i)].bias.data.copy_(vgg[f"features.{i}.bias"])
            for k, layer in enumerate(self.lins):
                layer.weight.data.copy_(lin[f"lin{k}.model.1.weight"])
        except (KeyError, RuntimeError) as exc:
            raise StylemixError(f"the VGG16/LPIPS weight files do not fit ({str(exc)[:120]})") from None
        self.register_buffer("shift", _SHIFT.clone())
        self.register_buffer("scale", _SCALE.clone())
        self.eval().requires_grad_(False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        x = (x - self.shift) / self.scale
        for i, _, _ in _CONV_LAYERS:
            x = F.relu(self.features[str(i)](x))
            if i in _TAPS:
                out.append(x)
            if i in _POOL_AFTER:
                x = F.max_pool2d(x, 2)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for fa, fb, lin in zip(self._taps(a), self._taps(b), self.lins):
            fa = fa / (fa.square().sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((fa - fb).square()).mean(dim=[1, 2, 3])
        return total
