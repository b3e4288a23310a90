"""Slider → new weights and slider → new image: the engine against a deep-copy baseline.

    python bench/recompose.py [--big]   (default pair, fixture pair; --big adds a random
                                         1024 px config-f pair)

Baseline: ``stylemix.blend`` — deepcopy the base generator and write the blended weights into it
(what an app without an engine does per slider move). Prints a table; numbers are medians.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylemix  # noqa: E402
from stylemix import GeneratorConfig  # noqa: E402
from stylemix.engine import BlendEngine  # noqa: E402
from random_pair import random_pair  # noqa: E402  (bench/ is on sys.path)
from timing import median_ms  # noqa: E402  (bench/ is on sys.path)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "nvidia"




def bench_pair(name, G_base, G_transfer, repeat):
    res = G_base.block_resolutions
    alphas = [{r: float(i % 2 == k % 2) for i, r in enumerate(res)} for k in range(2)]
    step = iter(range(10 ** 9))

    def baseline():
        a = alphas[next(step) % 2]
        stylemix.blend(G_base, G_transfer, stylemix.BlendSpec.per_resolution(a))

    engine = BlendEngine(G_base, G_transfer)

    def engine_all():
        engine.set_alphas(alphas[next(step) % 2])

    one = res[len(res) // 2]

    def engine_one_slider():
        engine.set_alphas({one: (next(step) % 10) / 10})

    z = torch.randn(1, G_base.z_dim)

    def slider_to_image():
        with engine.session({one: (next(step) % 10) / 10}) as G, torch.no_grad():
            G.synthesis(G.mapping(z, None, truncation_psi=0.7))

    rows = [
        ("baseline: blend() (deepcopy + blend)", median_ms(baseline, repeat)),
        ("engine: every α changes", median_ms(engine_all, repeat)),
        (f"engine: one slider ({one} px) changes", median_ms(engine_one_slider, repeat)),
        ("engine: one slider → image (batch 1)", median_ms(slider_to_image, max(3, repeat // 4))),
    ]
    n = sum(p.numel() for p in G_base.parameters())
    print(f"\n{name}: {n / 1e6:.2f} M parameters, {G_base.img_resolution} px")
    print(f"{'operation':44s} {'median ms':>10s}")
    for label, ms in rows:
        print(f"{label:44s} {ms:10.3f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", action="store_true", help="add a random 1024 px config-f pair")
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device cpu")
    models = Path(__file__).resolve().parents[1] / "models"
    bench_pair("default pair (models/)", stylemix.load_generator(models / "base.safetensors"),
               stylemix.load_generator(models / "transfer.safetensors"), args.repeat)
    bench_pair("fixture pair (skip64)", stylemix.load_generator(FIXTURES / "skip64_base.pkl"),
               stylemix.load_generator(FIXTURES / "skip64_transfer.pkl"), args.repeat)
    if args.big:
        cfg = GeneratorConfig(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024,
                              channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256)
        A, B = random_pair(cfg)
        bench_pair("config-f 1024 (random)", A, B, max(5, args.repeat // 8))


if __name__ == "__main__":
    main()
