"""Toonify real and held-out faces with a pair and check that the person survives.

    python bench/toonify_identity.py [BASE TRANSFER] [--swap R] [--steps N] [--heldout DIR] [--compare [--alphas TABLE]…]
        [--init {auto,mean}]

Photos: scikit-image's astronaut (a real photo) and held-out teacher faces (seeds the base never
saw in training: assets/photos/heldout_*.png, plus the chunks of --heldout when given) treated
as photos. Each is aligned (dlib, FFHQ layout), projected into the base model (from its encoder + the
CLI's refinement when the base has one, as `stylemix toonify` does; ``--init mean``: the
optimisation from the mean w) and rendered with the base (the reconstruction) and with the blend (the toonified image). Printed per photo:
reconstruction PSNR/SSIM against the aligned photo at the model's resolution; whether dlib
finds a face in the reconstruction and in the toonified image; dlib face-recognition distances
(128-d descriptors, same person below 0.6) from the reconstruction to its own photo and to the
nearest other photo; and the seconds for align + project + render on this machine.
The baseline in the same run is the mean w (the projection's starting point) rendered by the
base: how far a generic face is from each photo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from measures import blotch, grain, measure_toonify_identity, stains, toward_transfer  # noqa: E402
from stylemix.identity import SAME_PERSON, distance, face_descriptor  # noqa: E402
from stylemix.project import ProjectionConfig, image_to_tensor  # noqa: E402
from stylemix.cli.common import parse_alpha_table  # noqa: E402
from stylemix.default_pair import encoder_beside  # noqa: E402
from stylemix.encoder import load_encoder  # noqa: E402
from stylemix.toonify import (DEFAULT_REFINE_STEPS, Toonifier, default_toonify_spec,  # noqa: E402
                              half_blended_swap, refinement_config, toon_latent, toonify_r_swap)

BASE_ONLY = stylemix.BlendSpec.linear(0.0)


def photos(heldout: Path | None, count: int, first: int = 0) -> dict[str, Image.Image]:
    """The report set (the astronaut, then held-out faces in seed order), or with ``first`` > 0
    the held-out faces from the ``first``-th on alone: a tuning set kept apart from the report."""
    import skimage
    out = {}
    if not first:
        out["astronaut"] = Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB")
        for path in sorted((ROOT / "assets" / "photos").glob("heldout_*.png")):
            out[path.stem] = Image.open(path).convert("RGB")
    if heldout is not None:
        faces = []
        for chunk in sorted(heldout.glob("chunk_*.npz")):
            with np.load(chunk) as data:
                faces += [(int(seed), img) for seed, img in zip(data["seeds"], data["img"])]
        for seed, img in faces[first:]:
            out.setdefault(f"heldout_{seed}", Image.fromarray(img.transpose(1, 2, 0)))
    names = list(out)[:count]
    return {k: out[k] for k in names}


def compare_blends(toonifier, rows, faces, default, config, extra=()) -> None:
    """Toon found / distance / cleanliness / structure for blends around the default, from the
    same (cached) projections: hard and half-blended swaps an octave either side of r_swap, and
    the ``extra`` α tables (``{resolution: α}``)."""
    r, groups = toonify_r_swap(toonifier.G_base), toonifier.G_base.block_resolutions
    blends = {}
    for q in (r // 2, r, 2 * r):
        if q in groups:
            blends[f"swap {q}"] = stylemix.BlendSpec.swap(q)
            blends[f"swap {q} half-blended"] = half_blended_swap(toonifier.G_base, q)
    blends[f"smooth {r}, 0.5 octave"] = stylemix.BlendSpec.smooth(r, 0.5)
    blends[f"smooth {r}, 1 octave"] = stylemix.BlendSpec.smooth(r, 1.0)
    for table in extra:
        spec = stylemix.BlendSpec.per_resolution(table)
        blends[spec.describe()] = spec
    same = [label for label, spec in blends.items() if spec.alphas(groups) == default.alphas(groups)]
    default_label = f"**default** ({same[0] if same else default.describe()})"
    blends = {default_label: default, **{k: v for k, v in blends.items() if k not in same}}
    own = {row.name: face_descriptor(faces[row.name]) for row in rows}
    print("\n| blend (same projections) | toon is a face | toon ↔ own photo, mean over found | "
          "toon grain | toon stains | toon blotch | toward the cartoon |")
    print("|---|---|---|---|---|---|---|")
    cartoons = torch.cat([image_to_tensor(toonifier.toonify(photo, stylemix.BlendSpec.linear(1.0), config).toon)
                          for photo in faces.values()])
    for label, spec in blends.items():
        found, distances, toons, recons = 0, [], [], []
        for name, photo in faces.items():
            result = toonifier.toonify(photo, spec, config)
            toon_image = result.toon
            toons.append(image_to_tensor(toon_image))
            # blotch and "toward the cartoon" measure the blend's change: against base drawing
            # the toon's own latent (toon_latent: part of the way back to the encoder's)
            recons.append(image_to_tensor(toonifier.render(toon_latent(result.latent, toonifier.toon_share), BASE_ONLY)))
            toon = face_descriptor(toon_image)
            if toon is not None:
                found += 1
                if own[name] is not None:
                    distances.append(distance(toon, own[name]))
        toons, recons = torch.cat(toons), torch.cat(recons)
        print(f"| {label} | {found}/{len(faces)} | {np.mean(distances) if distances else float('nan'):.3f} | "
              f"{float(grain(toons).mean()):.2f} | {float(stains(toons).mean()):.2f} | "
              f"{float(blotch(toons, recons).median()):.1f} | "
              f"{float(toward_transfer(toons, recons, cartoons).mean()):.2f} |")
    print("(grain, stains: the median pixel's 1-2 px luma / 2-4 px chroma detail in 8-bit levels, "
          "bench/measures.py; the emoji art itself: 0.00. blotch: the median over photos of the "
          "largest 8×8-cell colour change from base drawing the toon's latent, 8-bit levels. toward the cartoon: "
          "where the toon's 32×32 light/dark layout lies between the latent drawn by base (0) and "
          "by the transfer alone (1), mean over photos)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base", nargs="?", default=str(ROOT / "models" / "base.safetensors"))
    parser.add_argument("transfer", nargs="?", default=str(ROOT / "models" / "transfer.safetensors"))
    parser.add_argument("--swap", type=int, default=None, help="r_swap (default: the pair's toonify default)")
    parser.add_argument("--steps", type=int, default=None, help="W steps (default: stylemix's)")
    parser.add_argument("--w-plus-steps", type=int, default=None)
    parser.add_argument("--heldout", type=Path, default=None, help="folder of held-out teacher chunks")
    parser.add_argument("--count", type=int, default=9, help="photos to use (astronaut first)")
    parser.add_argument("--first", type=int, default=0,
                        help="use the held-out faces from this index on, without the astronaut (a "
                             "tuning set: choose settings there, report on the default set)")
    parser.add_argument("--toon-share", type=float, default=None,
                        help="share of the refinement's change the toon keeps (default: toonify's "
                             "TOON_REFINEMENT_SHARE; 1: the toon at the refined latent, as before)")
    parser.add_argument("--init", choices=("auto", "mean"), default="auto",
                        help="auto: the base's encoder + refinement when it has one (the CLI's path); "
                             "mean: optimise from the mean w")
    parser.add_argument("--compare", action="store_true",
                        help="also render the same projections with other blends around the default "
                             "(hard and half-blended swaps at r_swap/2, r_swap and 2·r_swap, smooth ramps at r_swap) and report "
                             "how many toonified images dlib finds as faces, their distance, cleanliness "
                             "and how far their structure went toward the cartoon")
    parser.add_argument("--alphas", action="append", default=[], metavar="TABLE",
                        help="with --compare: one more blend, α per resolution as the CLI takes it "
                             "(e.g. 4:1,8:1,16:1,32:0.25; repeatable)")
    args = parser.parse_args()
    G_base, G_transfer = stylemix.load_generator(args.base), stylemix.load_generator(args.transfer)
    spec = stylemix.BlendSpec.swap(args.swap) if args.swap else default_toonify_spec(G_base, G_transfer)
    encoder_path = encoder_beside(args.base) if args.init == "auto" else None
    encoder = load_encoder(encoder_path, base=G_base) if encoder_path else None
    if encoder is not None:
        config = refinement_config(DEFAULT_REFINE_STEPS if args.steps is None else args.steps)
    else:
        config = ProjectionConfig(**{k: v for k, v in (("steps", args.steps), ("w_plus_steps", args.w_plus_steps))
                                     if v is not None})
    faces = photos(args.heldout, args.count, args.first)
    print(f"{Path(args.base).name} + {Path(args.transfer).name}: {G_base.img_resolution} px, "
          f"blend {spec.describe()}, latent from "
          f"{f'the encoder + {config.w_plus_steps} W+ steps' if encoder else f'{config.steps} W + {config.w_plus_steps} W+ steps'}, "
          f"torch threads {torch.get_num_threads()}")
    toonifier = Toonifier(G_base, G_transfer, encoder=encoder)  # keeps the projections: --compare reuses them
    if args.toon_share is not None:
        toonifier.toon_share = args.toon_share
    if encoder:
        print(f"toons drawn at the encoding + {toonifier.toon_share:g} × the refinement's change (toon_latent)")
    rows = measure_toonify_identity(toonifier, faces, spec, config)
    with torch.no_grad():
        mean_face = Image.fromarray(stylemix.render.to_uint8(
            G_base.synthesis(G_base.mapping.w_avg.reshape(1, 1, -1).repeat(1, G_base.num_ws, 1)))[0])
    generic = face_descriptor(mean_face)
    print("| photo | PSNR dB | SSIM | recon is a face | toon is a face | recon ↔ own photo | "
          "recon ↔ nearest other | recognised | toon ↔ own photo | mean face ↔ photo | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        own = face_descriptor(faces[row.name])
        baseline = distance(generic, own) if generic is not None and own is not None else float("nan")
        print(f"| {row.name} | {row.psnr:.2f} | {row.ssim:.3f} | {'yes' if row.recon_found else 'no'} | "
              f"{'yes' if row.toon_found else 'no'} | {row.own_distance:.3f} | {row.nearest_other:.3f} | "
              f"{'yes' if row.recognised else 'no'} | {row.toon_distance:.3f} | {baseline:.3f} | "
              f"{row.seconds:.1f} |")
    if args.compare:
        compare_blends(toonifier, rows, faces, spec, config, [parse_alpha_table(t) for t in args.alphas])
    n = len(rows)
    print(f"recognised {sum(r.recognised for r in rows)}/{n}; same person (< {SAME_PERSON}) "
          f"{sum(r.own_distance < SAME_PERSON for r in rows)}/{n}; faces found: reconstruction "
          f"{sum(r.recon_found for r in rows)}/{n}, toonified {sum(r.toon_found for r in rows)}/{n}; "
          f"mean PSNR {np.mean([r.psnr for r in rows]):.2f} dB, SSIM {np.mean([r.ssim for r in rows]):.3f}; "
          f"{np.mean([r.seconds for r in rows]):.1f} s per photo")


if __name__ == "__main__":
    main()
