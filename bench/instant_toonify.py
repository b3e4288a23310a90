"""Instant toonify against today's projection, side by side on the same photos.

    python bench/instant_toonify.py [--heldout data/ffhq_teacher/val] [--count 20] [--first 0]
                                    [--refine 0,30] [--no-projection] [--cli]

Photos: scikit-image's astronaut (a real photo) and held-out teacher faces (seeds 1,000,000 +
``--first`` … of the teacher's val split: never trained on by the base or the encoder) treated
as photos. For each way of finding the latent — the encoder alone, the encoder + N refinement
steps, and the projection from the mean w (200 W + 150 W+ steps, stylemix's recipe before the
encoder) — it prints, over the photos:

- dlib identity: descriptor distance from the reconstruction (base's drawing of the latent) to
  its own photo, how often that is below dlib's 0.6 and how often the reconstruction is nearer
  its own photo than any other photo of the set (recognised);
- reconstruction PSNR/SSIM against the aligned photo at the model's resolution;
- toon cleanliness: (a) the latent's distance from W — per-layer spread of ws around their mean
  in units of the base's w spread (0 for one w in every layer, as the transfer was trained on;
  e4e's measure of drift), and (b) high-frequency energy of the toon (Laplacian of luma) against
  the mean over toons of 64 random latents of the same blend (1.0 = as clean as the pair's own
  toons; blotches and stains raise it); and whether dlib finds the toon as a face;
- seconds per photo in this process (align + latent + two renders).

``--cli`` also times ``python -m stylemix toonify`` end to end (process start included; median
of 3) for each ``--refine`` value. Baseline and candidates run in the same process on the same
photos.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from stylemix.default_pair import default_base, default_encoder, default_transfer  # noqa: E402
from stylemix.encoder import load_encoder  # noqa: E402
from stylemix.identity import SAME_PERSON, distance, face_descriptor  # noqa: E402
from stylemix.project import ProjectionConfig, image_to_tensor, psnr, ssim  # noqa: E402
from stylemix.render import to_uint8  # noqa: E402
from stylemix.toonify import Toonifier, default_toonify_spec, refinement_config  # noqa: E402


def photos(heldout: Path | None, count: int, first: int, astronaut: bool = True) -> dict[str, Image.Image]:
    import skimage
    out = {"astronaut": Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB")} \
        if astronaut else {}
    faces = []
    if heldout is not None:
        for chunk in sorted(heldout.glob("chunk_*.npz")):
            with np.load(chunk) as data:
                faces += [(int(s), img) for s, img in zip(data["seeds"], data["img"])]
    else:
        faces = [(int(p.stem.split("_")[1]), np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1))
                 for p in sorted((ROOT / "assets" / "photos").glob("heldout_*.png"))]
    for seed, img in faces[first:first + count]:
        out[f"heldout_{seed}"] = Image.fromarray(img.transpose(1, 2, 0))
    return out


def high_frequency(image: Image.Image) -> float:
    """Mean squared Laplacian of the luma in [0, 1]."""
    x = torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32) / 255)[None, None]
    k = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float32)[None, None]
    return float(F.conv2d(x, k).square().mean())


def off_w(ws: torch.Tensor, w_std: torch.Tensor) -> float:
    """RMS of each layer's w around the layers' mean, in units of the base's per-dimension spread."""
    return float(((ws - ws.mean(1, keepdim=True)) / w_std).square().mean().sqrt())


def random_toon_energy(pair: Toonifier, spec, count: int = 64) -> float:
    from stylemix.render import render_seeds
    with pair.engine.session(spec) as G:
        imgs = to_uint8(render_seeds(G, list(range(count)), psi=1.0))
    return float(np.mean([high_frequency(Image.fromarray(a)) for a in imgs]))


def run(pair: Toonifier, faces, spec, how: str, config, init: str, reference: float, own: dict) -> dict:
    rows = []
    for name, photo in faces.items():
        start = time.perf_counter()
        face = pair.align(photo)[0].image
        latent = pair.project(face, config, init=init)
        rec = pair.render(latent, stylemix.BlendSpec.linear(0.0))
        toon = pair.render_toon(latent, spec)
        seconds = time.perf_counter() - start
        a, b = image_to_tensor(face), image_to_tensor(rec)
        rows.append({"name": name, "seconds": seconds, "psnr": psnr(b, a), "ssim": float(ssim(b, a)),
                     "rec": face_descriptor(rec), "toon_found": face_descriptor(toon) is not None,
                     "off_w": off_w(latent.ws.cpu(), pair.encoder.w_std if pair.encoder is not None else
                                    torch.ones(1)), "hf": high_frequency(toon) / reference})
    for row in rows:
        mine = own[row["name"]]
        row["own"] = distance(row["rec"], mine) if row["rec"] is not None and mine is not None else float("nan")
        others = [distance(row["rec"], d) for n, d in own.items()
                  if n != row["name"] and d is not None and row["rec"] is not None]
        row["recognised"] = bool(others) and row["own"] < min(others)
    n = len(rows)
    return {"how": how, "n": n,
            "same": sum(r["own"] < SAME_PERSON for r in rows), "recognised": sum(r["recognised"] for r in rows),
            "own": np.nanmean([r["own"] for r in rows]), "psnr": np.mean([r["psnr"] for r in rows]),
            "ssim": np.mean([r["ssim"] for r in rows]), "off_w": np.mean([r["off_w"] for r in rows]),
            "hf": np.mean([r["hf"] for r in rows]), "toon_found": sum(r["toon_found"] for r in rows),
            "seconds": np.median([r["seconds"] for r in rows])}


def cli_seconds(photo: Path, steps: int, repeats: int = 3) -> float:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "stylemix", "toonify", str(photo), "--steps", str(steps),
                            "-o", str(Path(tmp) / f"t{i}.png")], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default=str(default_base()))
    parser.add_argument("--transfer", default=str(default_transfer()))
    parser.add_argument("--encoder", default=str(default_encoder()))
    parser.add_argument("--heldout", type=Path, default=None, help="held-out teacher chunks (val split)")
    parser.add_argument("--count", type=int, default=20, help="held-out faces besides the astronaut")
    parser.add_argument("--first", type=int, default=0, help="index of the first held-out face used")
    parser.add_argument("--refine", default="0,30", help="refinement steps after the encoder, comma list")
    parser.add_argument("--no-projection", action="store_true", help="skip the 350-step baseline")
    parser.add_argument("--spread", default=None,
                        help="comma list of the refinement's layer-spread weights to compare (default: stylemix's)")
    parser.add_argument("--lr", default=None, help="comma list of refinement learning rates (default: stylemix's)")
    parser.add_argument("--cli", action="store_true", help="also time the CLI end to end")
    parser.add_argument("--no-astronaut", action="store_true",
                        help="held-out faces only (for choosing settings on faces never reported)")
    parser.add_argument("--folder", action="store_true",
                        help="also time `toonify DIR` on these photos: batch 8 against batch 1")
    args = parser.parse_args()
    G_base, G_transfer = stylemix.load_generator(args.base), stylemix.load_generator(args.transfer)
    E = load_encoder(args.encoder, base=G_base)
    pair = Toonifier(G_base, G_transfer, encoder=E)
    spec = default_toonify_spec(G_base, G_transfer)
    faces = photos(args.heldout, args.count, args.first, astronaut=not args.no_astronaut)
    own = {name: face_descriptor(photo) for name, photo in faces.items()}
    reference = random_toon_energy(pair, spec)
    print(f"{len(faces)} photos ({'' if args.no_astronaut else 'astronaut + '}held-out teacher faces from index "
          f"{args.first}); blend "
          f"{spec.describe()}; encoder {Path(args.encoder).name} ({E.info.get('kimg', '?')} kimg); "
          f"torch threads {torch.get_num_threads()}")
    results = [run(pair, faces, spec, "encoder alone", refinement_config(0), "encoder", reference, own)]
    spreads = [None] if args.spread is None else [float(v) for v in args.spread.split(",")]
    lrs = [None] if args.lr is None else [float(v) for v in args.lr.split(",")]
    for steps in [int(s) for s in args.refine.split(",") if int(s) > 0]:
        for spread in spreads:
            for lr in lrs:
                extra = "".join([f", spread {spread:g}" if spread is not None else "",
                                 f", lr {lr:g}" if lr is not None else ""])
                results.append(run(pair, faces, spec, f"encoder + {steps} steps{extra}",
                                   refinement_config(steps, spread_weight=spread, lr=lr), "encoder", reference, own))
    if not args.no_projection:
        results.append(run(pair, faces, spec, "projection 200 W + 150 W+ (before)", ProjectionConfig(),
                           "mean", reference, own))
    print("| latent from | same person (< 0.6) | recognised | distance to own photo | PSNR dB | SSIM | "
          "off-W spread | toon HF energy vs random toons | toon is a face | s per photo (in process) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['how']} | {r['same']}/{r['n']} | {r['recognised']}/{r['n']} | {r['own']:.3f} | "
              f"{r['psnr']:.2f} | {r['ssim']:.3f} | {r['off_w']:.3f} | {r['hf']:.2f} | "
              f"{r['toon_found']}/{r['n']} | {r['seconds']:.2f} |")
    if args.folder:
        from stylemix.batch_toonify import toonify_folder
        tmp = Path(tempfile.mkdtemp())
        for name, photo in faces.items():
            photo.save(tmp / f"{name}.png")
        for batch in (1, 8):
            report = toonify_folder(pair, tmp, tmp / f"out{batch}", spec, steps=0, batch=batch)
            print(f"folder of {len(report.written)} photos, encoder alone, batch {batch}: "
                  f"{len(report.written) / report.seconds:.2f} photos/s (align included)")
    if args.cli:
        import skimage
        astronaut = Path(tempfile.mkdtemp()) / "astronaut.png"
        Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").save(astronaut)
        for steps in [int(s) for s in args.refine.split(",")]:
            print(f"CLI `stylemix toonify astronaut.png --steps {steps}`: "
                  f"{cli_seconds(astronaut, steps):.1f} s wall-clock (median of 3, process start included)")


if __name__ == "__main__":
    main()
