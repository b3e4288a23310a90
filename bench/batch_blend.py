"""N blends of one latent: N engine rounds (recompose + render) against one batched pass.

    python bench/batch_blend.py [--repeat 20]

Blends: every swap resolution with low from transfer and from base (the contact sheet's
columns), on the default pair and on the fixture pair. Prints medians in ms.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from stylemix.batch_blend import BlendBatch  # noqa: E402
from stylemix.engine import BlendEngine  # noqa: E402
from stylemix.render import seed_to_z  # noqa: E402
from timing import median_ms  # noqa: E402  (bench/ is on sys.path)

FIXTURES = ROOT.parent / "shared" / "fixtures" / "nvidia"




@torch.no_grad()
def bench(name: str, base: Path, transfer: Path, repeat: int) -> None:
    G_base, G_transfer = stylemix.load_generator(base), stylemix.load_generator(transfer)
    res = G_base.block_resolutions[:-1]
    specs = [stylemix.BlendSpec.swap(r, low=low) for low in ("transfer", "base") for r in res]
    z = seed_to_z(1, G_base.z_dim)
    engine, batch = BlendEngine(G_base, G_transfer), BlendBatch(G_base, G_transfer)

    def one_by_one():
        for spec in specs:
            with engine.session(spec) as G:
                G.synthesis(G.mapping(z, truncation_psi=0.7))

    def one_pass():
        batch.render(specs, z, psi=0.7)

    a, b = median_ms(one_by_one, repeat), median_ms(one_pass, repeat)
    print(f"| {name} | {len(specs)} | {a:.1f} | {b:.1f} | {a / b:.2f}× |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu")
    print("| pair | blends | engine, one by one (ms) | one batched pass (ms) | speed-up |")
    print("|---|---|---|---|---|")
    bench("default pair (64 px)", ROOT / "models" / "base.safetensors",
          ROOT / "models" / "transfer.safetensors", args.repeat)
    bench("fixture skip64", FIXTURES / "skip64_base.pkl", FIXTURES / "skip64_transfer.pkl", args.repeat)


if __name__ == "__main__":
    main()
