"""A sheet for choosing a toonify blend by eye: the aligned photos on top, then one row per
candidate α table, every toon from the same projection (the CLI's encoder + refinement).

    python bench/toon_candidates.py OUT.png --alphas 4:1,8:1,16:0.5 --alphas 4:1,8:1,16:1,32:0.5 …
        [BASE TRANSFER] [--heldout data/ffhq_teacher/val --first 100 --count 6] [--size 192]
        [--refine-steps N]

Rows are lettered A, B, … (the tables are printed with their letters), so a reviewer can judge
them blind. Photos come from bench/toonify_identity.py's sets: by default the astronaut and the
report faces; with ``--first N`` the held-out faces from the N-th on (the tuning set).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from stylemix.cli.common import parse_alpha_table  # noqa: E402
from stylemix.default_pair import encoder_beside  # noqa: E402
from stylemix.encoder import load_encoder  # noqa: E402
from stylemix.toonify import DEFAULT_REFINE_STEPS, Toonifier, refinement_config  # noqa: E402
from toonify_identity import photos  # noqa: E402

LABEL_WIDTH = 48


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output", type=Path)
    parser.add_argument("base", nargs="?", default=str(ROOT / "models" / "base.safetensors"))
    parser.add_argument("transfer", nargs="?", default=str(ROOT / "models" / "transfer.safetensors"))
    parser.add_argument("--alphas", action="append", required=True, metavar="TABLE",
                        help="one row: α per resolution as the CLI takes it (repeatable)")
    parser.add_argument("--heldout", type=Path, default=None)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--size", type=int, default=192, help="tile size in px")
    parser.add_argument("--refine-steps", type=int, default=DEFAULT_REFINE_STEPS,
                        help=f"W+ refinement steps after the encoder (default {DEFAULT_REFINE_STEPS}, the "
                             "CLI's; 0: the encoding itself)")
    args = parser.parse_args()
    specs = [stylemix.BlendSpec.per_resolution(parse_alpha_table(t)) for t in args.alphas]
    G_base = stylemix.load_generator(args.base)
    encoder_path = encoder_beside(args.base)
    encoder = load_encoder(encoder_path, base=G_base) if encoder_path else None
    toonifier = Toonifier(G_base, stylemix.load_generator(args.transfer), encoder=encoder)
    config = refinement_config(args.refine_steps) if encoder else None
    faces = [toonifier.align(photo)[0].image for photo in photos(args.heldout, args.count, args.first).values()]
    latents = [toonifier.project(face, config) for face in faces]
    rows = [faces] + [[toonifier.render_toon(latent, spec) for latent in latents] for spec in specs]
    size = args.size
    sheet = Image.new("RGB", (LABEL_WIDTH + size * len(faces), size * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        draw.text((8, i * size + size // 2), "photo" if i == 0 else chr(64 + i), fill="black")
        for j, image in enumerate(row):
            sheet.paste(image.convert("RGB").resize((size, size), Image.LANCZOS), (LABEL_WIDTH + j * size, i * size))
    sheet.save(args.output)
    for i, spec in enumerate(specs):
        print(f"{chr(65 + i)}: {spec.describe()}")
    print(f"wrote {args.output}: {len(faces)} photos, {len(specs)} blends")


if __name__ == "__main__":
    main()
