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

The first run also writes `mapping.safetensors`: the teacher's mapping network under NVIDIA's
parameter names, with its mean w, for the student to copy (`stylemix distill --mapping`).

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


def mapping_tensors(wheel: Path, lr_multiplier: float = 0.01) -> dict[str, np.ndarray]:
    """The teacher's mapping network under NVIDIA's names and storage convention.

    The IR computes, per layer, x ← lrelu(x @ W + b, 0.2) · √2 after normalising z's second
    moment, with W [in, out] (a MatMul with transpose_b stores it [out, in]) and b already scaled. NVIDIA's FullyConnectedLayer stores
    ``weight`` [out, in] and ``bias`` unscaled and multiplies them at run time by
    lr_multiplier/√in and lr_multiplier (equalised learning rate, lr_multiplier 0.01 in FFHQ's
    mapping), so the stored values are W.T·√in/lr_multiplier and b/lr_multiplier.
    """
    import openvino as ov

    xml, weights = read_ir(wheel, "MappingNetwork")
    model = ov.Core().read_model(xml, ov.Tensor(np.frombuffer(weights, np.uint8)))
    out: dict[str, np.ndarray] = {}
    layer = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        W = op.input_value(1).get_node().get_data().astype(np.float64)
        if op.get_attributes().get("transpose_b"):
            W = W.T  # stored [out, in]
        add = next(iter(op.output(0).get_target_inputs())).get_node()
        b = add.input_value(1).get_node().get_data().astype(np.float64).reshape(-1)
        out[f"mapping.fc{layer}.weight"] = (W.T * np.sqrt(W.shape[0]) / lr_multiplier).astype(np.float32)
        out[f"mapping.fc{layer}.bias"] = (b / lr_multiplier).astype(np.float32)
        layer += 1
    return out


def write_mapping(teacher: Teacher, wheel: Path, path: Path, samples: int = 100_000) -> None:
    """``mapping.safetensors``: the teacher's mapping network (NVIDIA names) and its mean w over
    ``samples`` seeded z, checked against the teacher's own mapping of seeds 0–7."""
    import sys

    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # stylemix from this checkout
    from stylemix.train.distill import make_student

    tensors = {k: torch.from_numpy(v) for k, v in mapping_tensors(wheel).items()}
    G = make_student(tensors, 4, {4: 1})  # a stub synthesis: only the mapping is used here
    z = np.stack([z_of(s) for s in range(8)])
    with torch.no_grad():
        ours = G.mapping(torch.from_numpy(z))[:, 0].numpy()
    error = float(np.abs(ours - teacher.mapping(z)).max())
    if error > 1e-3:
        raise SystemExit(f"mapping conversion is wrong: max |Δw| {error:.2e} on seeds 0-7")
    G.estimate_w_avg(samples, seed=0)
    tensors["mapping.w_avg"] = G.mapping.w_avg.detach().clone()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
              metadata={"source": "random-face==2021.7.21.1 MappingNetwork (FFHQ StyleGAN2 mapping)",
                        "w_avg_samples": str(samples), "max_abs_error_vs_teacher": f"{error:.2e}"})
    print(f"wrote {path} (max |Δw| against the teacher {error:.1e})")


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
    if not (args.out / "mapping.safetensors").exists():
        write_mapping(teacher, args.wheel, args.out / "mapping.safetensors")
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
