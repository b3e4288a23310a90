"""Copy a trained base + transfer pair into models/ as the default pair.

    python tools/pack_default_pair.py runs/base128_adv runs/transfer128 [-o models]
        [--toonify-alphas 4:1,8:1,16:1,32:1]

Reads each folder's generator.safetensors (G_ema), checks that the transfer was fine-tuned from
the base (same synthesis architecture), and writes models/base.safetensors and
models/transfer.safetensors with float16 synthesis weights (half the size; the mapping network
stays float32, so z → w is exactly the teacher's). --toonify-alphas stores the blend chosen for
this pair in the transfer's metadata: toonify, the CLI and the app's sliders start from it
(stylemix.toonify.default_toonify_spec).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from stylemix.formats import native  # noqa: E402
from stylemix.cli.common import parse_alpha_table  # noqa: E402


def model_file(path: Path) -> Path:
    return path / "generator.safetensors" if path.is_dir() else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, help="distill/train output folder or a model file")
    parser.add_argument("transfer", type=Path, help="finetune output folder or a model file")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "models")
    parser.add_argument("--toonify-alphas", type=parse_alpha_table, default=None, metavar="TABLE",
                        help="the pair's toonify blend, α per block resolution (e.g. 4:1,8:1,16:1,32:1)")
    args = parser.parse_args()
    base = stylemix.load_generator(model_file(args.base))
    transfer = stylemix.load_generator(model_file(args.transfer))
    stylemix.check_compatible(base, transfer)
    if args.toonify_alphas and not set(args.toonify_alphas) <= set(base.block_resolutions):
        parser.error(f"--toonify-alphas names resolutions the pair has no block for "
                     f"(its blocks: {', '.join(map(str, base.block_resolutions))} px)")
    base.forget_file_metadata()
    transfer.forget_file_metadata()
    transfer.toonify_alphas = args.toonify_alphas
    args.output.mkdir(parents=True, exist_ok=True)
    for G, name in ((base, "base.safetensors"), (transfer, "transfer.safetensors")):
        native.save(G, args.output / name, synthesis_dtype=torch.float16)
        print(f"wrote {args.output / name} ({(args.output / name).stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
