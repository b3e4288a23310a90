"""Are a transfer model's samples clean? Detail and colour stains against its own training set.

    python bench/transfer_quality.py [TRANSFER] --data data/emoji_ffhq [--seeds 64] [--sheet OUT.png]
        [--base BASE] [--checkpoint RUN_DIR]

A fine-tuned generator that has not settled draws grain (fine, high-frequency noise) and
blotches (colour stains a few pixels wide) the art it learnt from does not have. Measured on
``--seeds`` samples (ψ 0.7, constant noise) and on every training image, both at the model's
resolution. The art is flat almost everywhere (smooth shading on a plain backdrop) and its
detail sits on a few edges, so each figure is the detail of the *median pixel* of an image, in
8-bit levels, averaged over the images: edges do not count, stains spread over an area do.

- **grain**: the luma's 1-2 px detail (what a 1/2 downsample loses);
- **stains**: the chroma's (each colour channel minus the luma) 2-4 px detail (what a 1/4
  downsample loses beyond the 1/2 one);
- with ``--checkpoint`` (a `stylemix finetune` output folder), the fine-tuned D's mean logit on
  the samples and on the training images (D's own verdict: real images score higher).

With ``--base``, the same figures for the base model's samples are printed as the baseline: a
photo model has more detail than the cartoon, so the transfer should sit well below it.
``--sheet`` writes the samples as a contact sheet (8 columns, 2× enlarged).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from measures import grain, stains  # noqa: E402
from stylemix.render import make_grid, render_seeds, save_png, to_uint8  # noqa: E402
from stylemix.train import ImageFolder  # noqa: E402


@torch.no_grad()
def d_logits(run_dir: Path, images: torch.Tensor) -> float:
    from stylemix.train import networks_from_checkpoint, read_trainer_checkpoint
    ckpt = read_trainer_checkpoint(run_dir)
    if ckpt is None:
        raise SystemExit(f"{run_dir}: no stylemix trainer checkpoint")
    D = networks_from_checkpoint(ckpt)[1].eval()
    return float(torch.cat([D(chunk) for chunk in images.split(32)]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description="Grain and colour stains of a transfer's samples "
                                     "against its training images, in 8-bit levels: lower is cleaner, "
                                     "flat cartoon art scores 0.00 (the shipped transfer: 1.43 / 0.77).")
    parser.add_argument("transfer", nargs="?", default=str(ROOT / "models" / "transfer.safetensors"))
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "emoji_ffhq",
                        help="the transfer's training images (tools/build_emoji_heads.py)")
    parser.add_argument("--base", default=None, help="also measure this model's samples (baseline)")
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--checkpoint", type=Path, default=None, help="a finetune run folder: D's verdict")
    parser.add_argument("--sheet", type=Path, default=None, help="write the samples here (PNG)")
    args = parser.parse_args()
    G = stylemix.load_generator(args.transfer)
    seeds = list(range(args.seeds))
    samples = render_seeds(G, seeds, psi=0.7).float().clamp(-1, 1)
    real = ImageFolder(args.data, G.img_resolution).images.float() / 127.5 - 1
    print(f"{Path(args.transfer).name}: {args.seeds} samples (ψ 0.7) and {len(real)} training images "
          f"({args.data}), {G.img_resolution} px; median pixel's detail in 8-bit levels")
    print("| images | grain (1-2 px luma) | stains (2-4 px chroma) | worst image's stains |")
    print("|---|---|---|---|")
    rows = [(Path(args.transfer).name, samples), ("training images", real)]
    if args.base:
        rows.append((Path(args.base).name + " (baseline)",
                     render_seeds(stylemix.load_generator(args.base), seeds, psi=0.7).float().clamp(-1, 1)))
    for name, images in rows:
        s = stains(images)
        print(f"| {name} | {float(grain(images).mean()):.2f} | {float(s.mean()):.2f} | "
              f"{float(s.max()):.2f} (#{int(s.argmax())}) |")
    if args.checkpoint is not None:
        print(f"fine-tuned D's mean logit: samples {d_logits(args.checkpoint, samples):.3f}, "
              f"training images {d_logits(args.checkpoint, real):.3f}")
    if args.sheet is not None:
        save_png(make_grid(to_uint8(samples), columns=8), args.sheet, scale=2)
        print(f"wrote {args.sheet}")


if __name__ == "__main__":
    main()
