"""Projection quality against steps and time, on base-model samples and a real photo.

    python bench/projection.py [--model BASE] [--transfer T] [--steps 50,100,200,400]

Targets: three samples of the base model (seeds 100-102, ψ 0.7, so the true latent exists)
and scikit-image's astronaut photo aligned to the model's resolution. For each step budget it
projects from scratch (W only, then W with 100 extra W+ steps) and prints PSNR / SSIM of the
reconstruction and the seconds taken. Ends with one toonify end to end (align → project → blend).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylemix  # noqa: E402
from stylemix.align import align  # noqa: E402
from stylemix.project import (ProjectionConfig, image_to_tensor, project, psnr,  # noqa: E402
                              render_latent, ssim)
from stylemix.render import render_seeds  # noqa: E402
from stylemix.toonify import Toonifier  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "nvidia"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(FIXTURES / "skip64_base.pkl"))
    parser.add_argument("--transfer", default=str(FIXTURES / "skip64_transfer.pkl"))
    parser.add_argument("--steps", default="50,100,200,400")
    args = parser.parse_args()
    from skimage import data
    G = stylemix.load_generator(args.model)
    targets = [(f"base sample seed {s}", render_seeds(G, [s], psi=0.7)) for s in (100, 101, 102)]
    photo = align(data.astronaut(), output_size=G.img_resolution)[0].image
    targets.append(("astronaut photo", image_to_tensor(photo)))
    print(f"model {Path(args.model).name} ({G.img_resolution} px), CPU, {torch.get_num_threads()} threads")
    print(f"{'target':22s} {'mode':9s} {'steps':>5s} {'PSNR dB':>8s} {'SSIM':>6s} {'s':>6s}")
    for name, target in targets:
        for steps in [int(s) for s in args.steps.split(",")]:
            for w_plus in (0, 100):
                t = time.perf_counter()
                result = project(G, target, ProjectionConfig(steps=steps, w_plus_steps=w_plus,
                                                             early_stop_patience=10 ** 9))
                seconds = time.perf_counter() - t
                rec = render_latent(G, result)
                mode = "W" if not w_plus else "W+100"
                print(f"{name:22s} {mode:9s} {steps:5d} {psnr(rec, target):8.2f} "
                      f"{ssim(rec.clamp(-1, 1), target).item():6.3f} {seconds:6.1f}")
    toonifier = Toonifier(G, stylemix.load_generator(args.transfer))
    t = time.perf_counter()
    toonifier.toonify(data.astronaut(), stylemix.BlendSpec.swap(16), ProjectionConfig(steps=300))
    print(f"\ntoonify end to end (align, 300 W steps, swap16 render): {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
