"""Build a stylised-domain training set of seeded 2D cartoon heads from DiceBear.

Source: the npm packages `@dicebear/core@9.4.3` and `@dicebear/collection@9.4.3` (MIT code).
The art of each style has its own licence, which the style's `meta` states and every SVG
carries in its metadata; the default style, *Adventurer* by Lisa Wischofsky, is CC BY 4.0
(credit it wherever a model trained on it is shown). DiceBear draws any number of faces, one
per seed string (hair, eyes, mouth, brows, skin colour, glasses…), so this set is as large as
asked, unlike the 204 Fluent Emoji heads.

Every head is cropped to the FFHQ layout the default base uses (tools/build_emoji_heads.py:
the eye centres at 37.5 % and 62.5 % of the width and 47.3 % of the height), widened by
--zoom-out around that layout's centre because a cartoon head is big for its eyes. A style places
its eyes at the same spot for every seed, so the eye centres are found once per style: the
same seeds drawn with two different eye variants differ only around the eyes, and the centroid
of that difference left and right of the middle is each eye. Heads are composited on a solid
backdrop: the backdrop colour of one of the base model's samples with --backdrops-from BASE
(as the emoji set is), else a seeded pastel.

    npm install --prefix data/dicebear @dicebear/core@9.4.3 @dicebear/collection@9.4.3
    python tools/build_dicebear_heads.py data/dicebear data/adventurer --count 1000 \\
        --backdrops-from models/base.safetensors

Needs Node.js (`node` on PATH) and resvg-py (`pip install resvg-py`) to rasterise. The output
(PNG per seed, named STYLE-NNNNN.png) is the same for the same arguments.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_emoji_heads as emoji  # noqa: E402  (the FFHQ crop and the model's backdrops)

# Per style, DiceBear options that keep what a face photo can be mapped to: Adventurer's eyes
# that look at the viewer (not its winks, sideways glances or half-closed lids), and no glasses
# (its sunglasses hide the eyes).
STYLE_OPTIONS = {
    "adventurer": {"eyes": ["variant01", "variant02", "variant03", "variant23", "variant24", "variant25",
                            "variant26"],
                   "glassesProbability": 0},
}

# Draws SVGs in node: argv = style, count, seed prefix, eye variant A, eye variant B (the two
# empty for a plain set), options as JSON. Prints one JSON object per line: {"seed", "svg"} or,
# with eye variants, {"seed", "a", "b"}.
NODE_DRAW = r"""
import { createAvatar } from '@dicebear/core';
import * as collection from '@dicebear/collection';
const [style, count, prefix, eyesA, eyesB, options] = process.argv.slice(1);
const art = collection[style];
if (!art) { console.error(`unknown DiceBear style ${style} (the styles: ${Object.keys(collection).join(', ')})`); process.exit(2); }
if (eyesA === 'LIST') { console.log(JSON.stringify({meta: art.meta, eyes: art.schema.properties.eyes?.items?.enum ?? []})); process.exit(0); }
for (let i = 0; i < Number(count); i++) {
  const seed = `${prefix}-${i}`;
  const draw = (extra) => createAvatar(art, {seed, size: %d, ...JSON.parse(options || '{}'), ...extra}).toString();
  console.log(JSON.stringify(eyesA ? {seed, a: draw({eyes: [eyesA]}), b: draw({eyes: [eyesB]})}
                                   : {seed, svg: draw({})}));
}
""" % emoji.RENDER


def node_lines(npm_dir: Path, *args: str) -> list[dict]:
    """Run NODE_DRAW in ``npm_dir`` (where the DiceBear packages are installed)."""
    try:
        done = subprocess.run(["node", "--input-type=module", "-e", NODE_DRAW, *args], cwd=npm_dir,
                              capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SystemExit("node (Node.js) is not on PATH: apt-get install nodejs") from None
    if done.returncode != 0:
        raise SystemExit(f"DiceBear in {npm_dir} failed: {done.stderr.strip().splitlines()[-1]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def rasterise(svg: str) -> np.ndarray:
    """(RENDER, RENDER, 4) uint8 RGBA of one SVG."""
    try:
        import resvg_py
    except ImportError:
        raise SystemExit("rasterising DiceBear's SVGs needs resvg-py: pip install resvg-py") from None
    png = bytes(resvg_py.svg_to_bytes(svg_string=svg))
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    if image.size != (emoji.RENDER, emoji.RENDER):
        image = image.resize((emoji.RENDER, emoji.RENDER), Image.LANCZOS)
    return np.asarray(image)


def style_eyes(npm_dir: Path, style: str, all_variants: list[str], seeds: int = 4) -> np.ndarray:
    """(lx, ly, rx, ry) render pixels: the style's eye centres, from where each pair of its
    eye variants (those STYLE_OPTIONS keeps, else ``all_variants``) differs on the same seeds.
    One pair alone is not enough: two variants may differ only in the pupil, off the eye's
    centre."""
    variants = STYLE_OPTIONS.get(style, {}).get("eyes") or all_variants
    if len(variants) < 2:
        raise SystemExit(f"DiceBear style {style} has no eye variants to find its eyes by")
    options = json.dumps(STYLE_OPTIONS.get(style, {}))
    renders = []
    for a, b in zip(variants, variants[1:]):
        for pair in node_lines(npm_dir, style, str(seeds), "stylemix-eyes", a, b, options):
            renders.append((rasterise(pair["a"]), rasterise(pair["b"])))
    return eyes_where_they_differ(renders, style)


def eyes_where_they_differ(renders: list[tuple[np.ndarray, np.ndarray]], style: str) -> np.ndarray:
    """(lx, ly, rx, ry): the centroids, left and right of the middle, of where each pair of
    (H, W, 4) renders differs (pixels within 5 % of the largest summed difference left out)."""
    diff = sum(np.abs(a.astype(np.float64) - b.astype(np.float64)).sum(axis=2) for a, b in renders)
    ys, xs = np.nonzero(diff > 0.05 * diff.max())
    weights = diff[ys, xs]
    centres = []
    for side in (xs < diff.shape[1] / 2, xs >= diff.shape[1] / 2):
        if not side.any():
            raise SystemExit(f"DiceBear style {style}: its eyes are not on both sides of the face")
        w = weights[side]
        centres += [float((xs[side] * w).sum() / w.sum()), float((ys[side] * w).sum() / w.sum())]
    return np.array(centres)


def widened(eyes: np.ndarray, zoom_out: float) -> np.ndarray:
    """Eye centres moved toward their midpoint by ``zoom_out``: the FFHQ crop of the result is
    ``zoom_out`` times wider around the same centre, so a style's big head fits the square."""
    centre = np.array([(eyes[0] + eyes[2]) / 2, (eyes[1] + eyes[3]) / 2] * 2)
    return centre + (eyes - centre) * zoom_out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("npm_dir", type=Path, help="folder where @dicebear/core and @dicebear/collection are installed")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--style", default="adventurer", help="a DiceBear style with eyes (default: adventurer)")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="picks the seed strings and pastel backdrops")
    parser.add_argument("--backdrops-from", type=Path, default=None, metavar="BASE",
                        help="take each head's backdrop colour from a sample of this model (default: pastel)")
    parser.add_argument("--zoom-out", type=float, default=1.2,
                        help="crop this much wider than the FFHQ eye layout (default 1.2: Adventurer's "
                             "head is 3.3 eye distances wide, an FFHQ face about 2, so at 1 its hair is cut)")
    args = parser.parse_args(argv)
    if not (args.npm_dir / "node_modules" / "@dicebear" / "collection").is_dir():
        raise SystemExit(f"{args.npm_dir} has no node_modules/@dicebear/collection: "
                         f"npm install --prefix {args.npm_dir} @dicebear/core@9.4.3 @dicebear/collection@9.4.3")
    listing = node_lines(args.npm_dir, args.style, "0", "x", "LIST", "")[0]
    info = listing["meta"]
    eyes = widened(style_eyes(args.npm_dir, args.style, listing["eyes"]), args.zoom_out)
    options = json.dumps(STYLE_OPTIONS.get(args.style, {}))
    drawn = node_lines(args.npm_dir, args.style, str(args.count), f"stylemix{args.seed}", "", "", options)
    rng = np.random.default_rng(args.seed)
    try:
        backdrops = (emoji.model_backdrops(args.backdrops_from, len(drawn)) if args.backdrops_from
                     else [emoji.pastel(rng) for _ in drawn])
    except Exception as exc:  # stylemix's one-line errors: a missing or unreadable model file
        raise SystemExit(f"--backdrops-from {args.backdrops_from}: {exc}") from None
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for i, (head, backdrop) in enumerate(zip(drawn, backdrops)):
        emoji.compose(rasterise(head["svg"]), eyes, backdrop).save(args.out_dir / f"{args.style}-{i:05d}.png")
    licence = info.get("license", {})
    (args.out_dir / "LICENSE.txt").write_text(
        f"{info.get('title')} by {info.get('creator')} ({info.get('source')}), "
        f"{licence.get('name')} ({licence.get('url')}); drawn by DiceBear (MIT). Changed: each head "
        f"cropped to the FFHQ face layout, resized to {emoji.OUT_SIZE} px and put on a new backdrop "
        f"by stylemix's tools/build_dicebear_heads.py.\n")
    print(f"wrote {len(drawn)} {args.style} heads to {args.out_dir} (art: {info.get('title')} by "
          f"{info.get('creator')}, {licence.get('name')})")


if __name__ == "__main__":
    main()
