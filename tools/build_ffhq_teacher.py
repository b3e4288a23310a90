"""Build (z, w, face) pairs from an FFHQ StyleGAN2 teacher, for distilling the default base.

Teacher: MobileStyleGAN (Belousov 2021, Apache-2.0), a network distilled from NVIDIA's FFHQ
config-f StyleGAN2, shipped as OpenVINO IR files inside the PyPI wheel
`random-face==2021.7.21.1` (`random_face/data/{Mapping,Synthesis}Network.{xml,bin}`). The files
are read straight out of the wheel; the package itself is never installed or imported (its
module downloads at import time).

    pip download --no-deps random-face==2021.7.21.1 -d data/wheels
    python tools/build_ffhq_teacher.py data/wheels/random_face-2021.7.21.1-py3-none-any.whl \
        data/ffhq_teacher --count 30000
    python tools/build_ffhq_teacher.py WHEEL data/ffhq_teacher --split val --count 256

Pair i uses seed i (val: seed 1,000,000 + i) as NVIDIA's tools do: z = RandomState(seed).randn(512),
w = the teacher's mapping of z (ψ = 1), and the teacher's 1024 px face area-averaged (box filter)
down to --res px, stored as uint8 RGB. Output: `{split}/chunk_NNNNN.npz` holding `seeds` (N,),
`z` (N, 512), `w` (N, 512) float32 and `img` (N, 3, res, res) uint8, written atomically; a run
that is stopped resumes at the first missing chunk, and a chunk is the same whatever the
chunking of the run that made it (one seed, one face). Inference runs in float32: OpenVINO's
default on CPUs with AMX is bf16, which moves pixels by up to 0.2 and is slower here.
"""

from __future__ import annotations

import argparse
import os
import time
import zipfile
from pathlib import Path

import numpy as np

WHEEL_DATA = "random_face/data/"
VAL_FIRST_SEED = 1_000_000
Z_DIM = 512


def read_ir(wheel: Path, name: str):
    """(xml text, weights bytes) of one IR network read from the wheel without extracting it."""
    with zipfile.ZipFile(wheel) as archive:
        xml = archive.read(WHEEL_DATA + name + ".xml").decode()
        weights = archive.read(WHEEL_DATA + name + ".bin")
    return xml, weights


class Teacher:
    """The teacher's mapping (z → w) and synthesis (w → 1024 px image in about [-1, 1])."""

    def __init__(self, wheel: Path, threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
        self._nets = {}
        for name in ("MappingNetwork", "SynthesisNetwork"):
            xml, weights = read_ir(wheel, name)
            model = core.read_model(xml, ov.Tensor(np.frombuffer(weights, np.uint8)))
            self._nets[name] = core.compile_model(model, "CPU", config)

    def mapping(self, z: np.ndarray) -> np.ndarray:
        """z (N, 512) float32 → w (N, 512)."""
        net = self._nets["MappingNetwork"]
        return np.concatenate([net(row[None])[0] for row in z.astype(np.float32)])

    def synthesis(self, w: np.ndarray) -> np.ndarray:
        """w (1, 512) → image (1, 3, 1024, 1024) float32, RGB."""
        return self._nets["SynthesisNetwork"](w.astype(np.float32))[0]


def area_downsample(img: np.ndarray, res: int) -> np.ndarray:
    """(N, C, H, W) float → (N, C, res, res): mean over each (H/res)² block (box filter)."""
    n, c, h, w = img.shape
    f = h // res
    if f * res != h or w != h:
        raise ValueError(f"cannot box-downsample {h}x{w} to {res}")
    return img.reshape(n, c, res, f, res, f).mean(axis=(3, 5))


def to_uint8(img: np.ndarray) -> np.ndarray:
    """[-1, 1] float → uint8 with StyleGAN's mapping x·127.5 + 128, clipped."""
    return np.clip(np.rint(img * 127.5 + 128), 0, 255).astype(np.uint8)


def seeds_of(split: str, count: int) -> np.ndarray:
    first = VAL_FIRST_SEED if split == "val" else 0
    return np.arange(first, first + count)


def z_of(seed: int) -> np.ndarray:
    return np.random.RandomState(seed).randn(Z_DIM).astype(np.float32)


def build_chunk(teacher: Teacher, seeds: np.ndarray, res: int) -> dict[str, np.ndarray]:
    z = np.stack([z_of(int(s)) for s in seeds])
    w = teacher.mapping(z)
    img = np.concatenate([to_uint8(area_downsample(teacher.synthesis(w[i:i + 1]), res))
                          for i in range(len(seeds))])
    return {"seeds": seeds.astype(np.int64), "z": z, "w": w.astype(np.float32), "img": img}


def write_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="random_face-2021.7.21.1-py3-none-any.whl")
    parser.add_argument("out", type=Path, help="output folder (outside git, e.g. data/ffhq_teacher)")
    parser.add_argument("--count", type=int, default=30000, help="number of pairs")
    parser.add_argument("--split", choices=("train", "val"), default="train",
                        help="train: seeds 0…; val (held out): seeds 1,000,000…")
    parser.add_argument("--res", type=int, default=256, help="stored face size in px (box filter)")
    parser.add_argument("--chunk", type=int, default=250, help="pairs per chunk file")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if 1024 % args.res:
        parser.error("--res must divide 1024 (e.g. 64, 128, 256, 512)")

    folder = args.out / args.split
    folder.mkdir(parents=True, exist_ok=True)
    teacher = Teacher(args.wheel, args.threads)
    seeds = seeds_of(args.split, args.count)
    started, made = time.time(), 0
    for k, first in enumerate(range(0, args.count, args.chunk)):
        path = folder / f"chunk_{k:05d}.npz"
        chunk_seeds = seeds[first:first + args.chunk]
        if path.exists():
            with np.load(path) as done:
                if np.array_equal(done["seeds"], chunk_seeds) and done["img"].shape[-1] == args.res:
                    continue
        write_atomic(path, build_chunk(teacher, chunk_seeds, args.res))
        made += len(chunk_seeds)
        rate = (time.time() - started) / made
        print(f"{path.name}: seeds {chunk_seeds[0]}–{chunk_seeds[-1]}, {rate:.2f} s/pair, "
              f"{made} made this run", flush=True)
    print(f"done: {args.count} pairs in {folder} ({made} made this run, "
          f"{time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
