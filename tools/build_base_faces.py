"""Build the base-domain training set: 64x64 faces sampled from a small DCGAN.

Why a GAN as the data source: no face photo dataset can be downloaded here, but the
PyPI wheel `gan-face-generate==1.1.1` (MIT code; weights trained on DigiFace-1M, a
non-commercial dataset) ships a DCGAN generator for 64x64 faces. We only read its
`weights.tar` (a plain state dict, loaded with weights_only=True); the package is
never imported or installed, so it is not a runtime dependency.

    pip download --no-deps gan-face-generate==1.1.1 -d /tmp/wheels
    python tools/build_base_faces.py /tmp/wheels/gan_face_generate-1.1.1-py3-none-any.whl \
        data/base_faces --count 8000

The output is a folder of PNGs, identical for the same --seed, --count and machine type.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

WEIGHTS_MEMBER = "gan_face_generate/weights.tar"
LATENT_SIZE = 100
FEATURES = 64


def dcgan_generator() -> nn.Sequential:
    """The standard DCGAN generator layout (nz=100, ngf=64, 64x64 RGB)."""
    layers: list[nn.Module] = []
    widths = [LATENT_SIZE, FEATURES * 8, FEATURES * 4, FEATURES * 2, FEATURES]
    for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
        stride, pad = (1, 0) if i == 0 else (2, 1)
        layers += [nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False),
                   nn.BatchNorm2d(cout), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(FEATURES, 3, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def load_dcgan(wheel_or_tar: Path) -> nn.Module:
    """Read the DCGAN weights from the wheel (or an extracted weights.tar)."""
    if wheel_or_tar.suffix == ".whl":
        with zipfile.ZipFile(wheel_or_tar) as wheel:
            raw = wheel.read(WEIGHTS_MEMBER)
    else:
        raw = wheel_or_tar.read_bytes()
    checkpoint = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    state = {k.removeprefix("main."): v for k, v in checkpoint["netG_state_dict"].items()}
    net = dcgan_generator()
    net.load_state_dict(state)
    return net.eval()


@torch.no_grad()
def sample_faces(net: nn.Module, count: int, seed: int, batch: int = 500) -> np.ndarray:
    """uint8 faces [count, 64, 64, 3], the same for the same seed and batch."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, count, batch):
        n = min(batch, count - start)
        z = torch.randn(n, LATENT_SIZE, 1, 1, generator=gen)
        img = net(z).clamp(-1, 1)
        out.append(((img + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", type=Path, help="gan_face_generate wheel or weights.tar")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    faces = sample_faces(load_dcgan(args.weights), args.count, args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for i, face in enumerate(faces):
        Image.fromarray(face).save(args.out_dir / f"{i:06d}.png")
    print(f"wrote {len(faces)} faces to {args.out_dir}")


if __name__ == "__main__":
    main()
