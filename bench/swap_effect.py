"""Structure from the low resolutions, detail from the high ones, measured on a model pair.

    python bench/swap_effect.py [BASE TRANSFER] [--seeds 64]   (default: the pair in models/)

For every swap resolution, prints the mean distance of each swap to the transfer model in
8×8 light/dark layout, and to the base model in rendering (mean colour and fine-detail
strength); see stylemix/swap_effect.py. The row marked "analogue" is the swap the CLI and the
app build toonify's blend on (stylemix.toonify.toonify_r_swap: the paper's r_swap
scaled to the model, 8 px at 64 px, 16 px at 128 px, 32 px from 256 px).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from measures import measure_swap_effect  # noqa: E402
from stylemix.toonify import toonify_r_swap  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base", nargs="?", default=str(ROOT / "models" / "base.safetensors"))
    parser.add_argument("transfer", nargs="?", default=str(ROOT / "models" / "transfer.safetensors"))
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--psi", type=float, default=0.7)
    args = parser.parse_args()
    G_base, G_transfer = stylemix.load_generator(args.base), stylemix.load_generator(args.transfer)
    analogue = toonify_r_swap(G_base)
    print(f"{Path(args.base).name} + {Path(args.transfer).name} ({G_base.img_resolution} px), "
          f"psi {args.psi}, {args.seeds} seeds; toonify's swap (the paper's analogue): {analogue} px")
    print("| swap at | layout→T lowT | layout→T lowB | lowT closer | rendering→B lowT | rendering→B lowB | lowT closer | effect |")
    print("|---|---|---|---|---|---|---|---|")
    for r in G_base.block_resolutions[:-1]:
        e = measure_swap_effect(G_base, G_transfer, r, list(range(args.seeds)), psi=args.psi)
        mark = " (analogue)" if r == analogue else ""
        print(f"| {r} px{mark} | {e.coarse_lowT_to_T:.4f} | {e.coarse_lowB_to_T:.4f} | {e.coarse_wins:.0%} | "
              f"{e.fine_lowT_to_B:.4f} | {e.fine_lowB_to_B:.4f} | {e.fine_wins:.0%} | "
              f"{'yes' if e.holds else 'no'} |")


if __name__ == "__main__":
    main()
