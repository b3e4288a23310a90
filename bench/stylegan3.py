"""StyleGAN3 on the CPU: slider → image through the engine for the reference fixture pairs,
with the fast (matrix) resampling against its zero-insert + depthwise-convolution definition.

    python bench/stylegan3.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylemix  # noqa: E402
import stylemix.networks.stylegan3 as sg3  # noqa: E402
from stylemix import BlendSpec  # noqa: E402
from stylemix.engine import BlendEngine  # noqa: E402
from timing import median_ms  # noqa: E402  (bench/ is on sys.path)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "stylegan3"




def main():
    print(f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}\n")
    print("| pair | parameters | slider → image, reference resampling (ms) | fast resampling (ms) | speed-up |")
    print("|---|---|---|---|---|")
    for kind in ("sg3t64", "sg3r64"):
        A = stylemix.load_generator(FIXTURES / f"{kind}_base.pkl")
        B = stylemix.load_generator(FIXTURES / f"{kind}_transfer.pkl")
        engine = BlendEngine(A, B)
        z = torch.randn(1, A.z_dim)
        count = iter(range(10 ** 9))

        def slider():
            spec = BlendSpec.per_resolution({32: (next(count) % 10) / 10})
            with engine.session(spec) as G, torch.no_grad():
                G(z, truncation_psi=0.7)

        fast = median_ms(slider)
        original, sg3.resample = sg3.resample, sg3._resample_reference
        try:
            reference = median_ms(slider)
        finally:
            sg3.resample = original
        n = sum(p.numel() for p in A.parameters())
        print(f"| {kind} | {n / 1e6:.2f} M | {reference:.0f} | {fast:.0f} | {reference / fast:.2f}× |")


if __name__ == "__main__":
    main()
