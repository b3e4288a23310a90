"""Training throughput (images/s) on 1 and 2 ranks, in one run, through the real command line.

    python bench/ddp_throughput.py [--kimg 0.32] [--resolution 32] [--batch 16]

Each run is ``stylemix finetune`` of the same small generator on the same random folder, alone
(``python -m stylemix``) and under ``torchrun --nproc_per_node=2`` (gloo, one thread per rank);
the figure is kimg × 1000 / the loop's own step seconds (read from metrics.jsonl), so process
start and snapshots are not counted. On a GPU machine, the same comparison is:

    torchrun --standalone --nproc_per_node=8 -m stylemix finetune BASE.pkl DATA --batch 64 --batch-gpu 8 \\
        --kimg 2 --device cuda -o runs/ddp8     # against --nproc_per_node=1 with the same --batch-gpu
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def images_per_second(out: Path) -> float:
    last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    return last["kimg"] * 1000 / last["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kimg", type=float, default=0.32)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stylemix-ddp-"))
    data = tmp / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(32):
        Image.fromarray(rng.integers(0, 256, (args.resolution, args.resolution, 3), dtype=np.uint8)).save(data / f"{i}.png")
    py = [sys.executable, "-m", "stylemix"]
    run([*py, "train", str(data), "--resolution", str(args.resolution), "--kimg", "0.016", "--batch", "8",
         "--channel-base", "1024", "--channel-max", "64", "-o", str(tmp / "base")], threads=2)
    common = ["finetune", str(tmp / "base"), str(data), "--kimg", str(args.kimg), "--batch", str(args.batch),
              "--batch-gpu", str(args.batch // 2), "--snapshot-kimg", "1000"]
    run([*py, *common, "-o", str(tmp / "one")], threads=2)
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "stylemix",
         *common, "-o", str(tmp / "two")], threads=1)
    one, two = images_per_second(tmp / "one"), images_per_second(tmp / "two")
    print(f"finetune {args.resolution} px, batch {args.batch} (chunks of {args.batch // 2}), {args.kimg:g} kimg, "
          f"{os.cpu_count()} CPU cores:")
    print(f"| ranks | images/s |\n|---|---|\n| 1 (2 threads, baseline) | {one:.1f} |\n| 2 (gloo, 1 thread each) | {two:.1f} |")
    print(f"2 ranks / 1: {two / one:.2f}×")


if __name__ == "__main__":
    main()
