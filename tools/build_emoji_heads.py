"""Build the stylised-domain training set: 3D cartoon heads from Microsoft's Fluent Emoji.

Source: the npm package `@lobehub/fluent-emoji-3d@1.1.0` (MIT licence), 256 px WebP renders.
Only the glyphs that show a head filling the frame are used (people, children, elders, hair
and beard variants, Santa, angel…) in every skin tone; body-and-head glyphs are left out
because their heads are small and placed differently.

Every head is cropped to the FFHQ layout the default base uses, so that structure lines up
between the two domains: the eyes level at 37.5 % and 62.5 % of the width and at 47.3 % of the
height (the medians dlib's landmarks give on the teacher's faces; FFHQ's alignment puts the eyes
a quarter of the width apart). dlib finds no landmarks on these renders, so each glyph's eyes
are found as its two largest white (sclera) regions in the band where eyes sit; where that
fails (white beards and hair touch the band) the median of the same glyph family in other skin
tones is used. The square then usually reaches past the 256 px render, and the head is
composited on a pastel background drawn from a seeded generator — or, with --backdrops-from
BASE, on the backdrop colour of one of the base model's own samples (the mean of each sample's
outer 8 % frame, seeds 0, 1, …), so the stylised set differs from the photo domain in the head
and not in the backdrop's tint, and a fine-tune does not learn a brighter backdrop as structure.

Every head glyph has the same closed smile, so a transfer trained on them alone has never seen
an open mouth and draws a smiling photo's mouth as a dark hole. With --open-smiles each head
is also written a second time (``STEM-open.png``) with an open, laughing mouth taken from one
of the package's own yellow smileys (grinning, grinning with smiling eyes, beaming, laughing;
chosen by --seed), recoloured from the smileys' magenta to a mouth's crimson and placed over
the head's own smile at 0.8 of its eye distance wide.

    npm pack @lobehub/fluent-emoji-3d@1.1.0     # writes lobehub-fluent-emoji-3d-1.1.0.tgz
    python tools/build_emoji_heads.py lobehub-fluent-emoji-3d-1.1.0.tgz data/emoji_heads
    python tools/build_emoji_heads.py lobehub-fluent-emoji-3d-1.1.0.tgz data/emoji_open --open-smiles

The output (PNG per glyph, named by code points) is the same for the same --seed.
"""

from __future__ import annotations

import argparse
import io
import re
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

# Families whose glyph is a head that fills the frame (code point prefixes).
HEAD_FAMILIES = ("1f466", "1f467", "1f474", "1f475", "1f9d2", "1f476", "1f471", "1f9d4",
                 "1f473", "1f385", "1f936", "1f47c")
# man, woman, person: plain or with red/curly/bald/white hair; and Mx Claus.
HAIR_FAMILIES = ("1f468", "1f469", "1f9d1")
HAIR_SUFFIXES = ("", "-200d-1f9b0", "-200d-1f9b1", "-200d-1f9b2", "-200d-1f9b3")
TONE = r"(-1f3f[b-f])?"
RENDER = 256
EYE_X = (0.375, 0.625)   # FFHQ layout: eye centres as fractions of the output square
EYE_Y = 0.473
EYE_BAND = (90, 170)     # rows of the 256 px render where the eyes are searched
OUT_SIZE = 256
# Smileys whose open mouth is pasted on the heads by --open-smiles: grinning face, grinning
# face with smiling eyes, beaming face with smiling eyes, grinning squinting face.
MOUTH_DONORS = ("1f600", "1f604", "1f601", "1f606")
OPEN_MOUTH_WIDTH = 0.8   # the pasted mouth's width, in eye distances


def is_head_glyph(stem: str) -> bool:
    """True for the code-point names of the head-only glyphs this dataset uses."""
    heads = "|".join(HEAD_FAMILIES)
    if re.fullmatch(rf"({heads}){TONE}(-200d-264[02]-fe0f)?", stem):
        return True
    hair = "|".join(HAIR_FAMILIES)
    suffixes = "|".join(s for s in HAIR_SUFFIXES if s)
    if re.fullmatch(rf"({hair}){TONE}({suffixes})?", stem):
        return True
    return re.fullmatch(rf"1f9d1{TONE}-200d-1f384", stem) is not None


def read_glyphs(source: Path, wanted=is_head_glyph) -> dict[str, bytes]:
    """{code-point name: WebP bytes} of the glyphs whose name ``wanted`` accepts (by default
    the head glyphs), from the npm .tgz or its assets folder."""
    found: dict[str, bytes] = {}
    if source.is_dir():
        for path in sorted(source.glob("*.webp")):
            if wanted(path.stem):
                found[path.stem] = path.read_bytes()
        return found
    with tarfile.open(source, "r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name)
            if member.isfile() and name.suffix == ".webp" and wanted(name.stem):
                found[name.stem] = tar.extractfile(member).read()
    return dict(sorted(found.items()))


def render_rgba(webp: bytes) -> np.ndarray:
    """The glyph as a RENDER×RENDER RGBA uint8 array."""
    glyph = Image.open(io.BytesIO(webp)).convert("RGBA")
    if glyph.size != (RENDER, RENDER):
        glyph = glyph.resize((RENDER, RENDER), Image.LANCZOS)
    return np.asarray(glyph)


def largest_regions(mask: np.ndarray, count: int) -> list[np.ndarray]:
    """Boolean masks of the ``count`` largest connected regions of ``mask``, largest first
    (fewer when it has fewer)."""
    from scipy import ndimage

    labels, found = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    return [labels == k + 1 for k in np.argsort(sizes)[::-1][:min(count, found)]]


def find_eyes(rgba: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """((x, y) left, (x, y) right) centres of the two largest white, opaque, unsaturated regions
    in the eye band, or None when they do not look like a level pair of eyes."""
    from scipy import ndimage

    rgb, alpha = rgba[..., :3].astype(int), rgba[..., 3]
    white = (rgb.min(-1) > 215) & (alpha > 200) & (rgb.max(-1) - rgb.min(-1) < 30)
    band = np.zeros_like(white)
    band[EYE_BAND[0]:EYE_BAND[1], 30:RENDER - 30] = True
    regions = largest_regions(white & band, 2)
    if len(regions) < 2:
        return None
    (ly, lx), (ry, rx) = sorted((ndimage.center_of_mass(r) for r in regions), key=lambda c: c[1])
    if abs(ly - ry) > 6 or not 50 < rx - lx < 110:
        return None
    return (lx, ly), (rx, ry)


def cut_open_mouth(rgba: np.ndarray) -> np.ndarray:
    """The open mouth of a yellow smiley as a tight RGBA patch: the largest region below the
    eyes that is magenta (the mouth's inside) or white (teeth), holes filled, its magenta
    turned crimson, its edge softened by a 0.8 px blur of the mask."""
    from scipy import ndimage

    rgb, alpha = rgba[..., :3].astype(float), rgba[..., 3]
    magenta = (rgb[..., 2] > 110) & (rgb[..., 1] < 150) & (rgb[..., 2] > rgb[..., 1] + 30)
    white = rgb.min(-1) > 190
    mask = (magenta | white) & (alpha > 200)
    mask[:118] = False                                   # above the mouth: eyes
    regions = largest_regions(ndimage.binary_closing(mask, iterations=2), 1)
    if not regions:
        raise SystemExit("no open mouth found in a smiley glyph")
    mouth = ndimage.binary_fill_holes(regions[0])
    ys, xs = np.nonzero(mouth)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    patch = rgb[box]
    inside = magenta[box] & ~white[box]
    patch[inside] *= (0.85, 0.7, 0.42)
    soft = ndimage.gaussian_filter(mouth[box].astype(float), 0.8) * 255
    return np.dstack([patch, soft]).clip(0, 255).astype(np.uint8)


def closed_mouth_top(rgba: np.ndarray, eyes: np.ndarray) -> float:
    """The row where a head glyph's closed smile begins: the pixels redder than 97 % of those (red minus
    green, which sets lips apart from every skin tone) between 0.4 and 1.2 eye distances below
    the eyes, their 5th-percentile row."""
    lx, ly, rx, _ = eyes
    d = rx - lx
    top, bottom = int(ly + 0.4 * d), int(ly + 1.2 * d)
    rgb = rgba[top:bottom, int(lx + 0.15 * d):int(rx - 0.15 * d), :3].astype(int)
    redness = rgb[..., 0] - rgb[..., 1]
    rows, _ = np.nonzero(redness > np.percentile(redness, 97))
    if rows.size == 0:
        raise SystemExit("no lips found below a head glyph's eyes (the region is one colour)")
    return top + float(np.percentile(rows, 5))


def with_open_smile(rgba: np.ndarray, eyes: np.ndarray, mouth: np.ndarray) -> np.ndarray:
    """The head glyph with ``mouth`` (from cut_open_mouth) pasted over its closed smile,
    OPEN_MOUTH_WIDTH eye distances wide, centred between the eyes, its top at the smile's."""
    lx, _, rx, _ = eyes
    width = OPEN_MOUTH_WIDTH * (rx - lx)
    height = mouth.shape[0] * width / mouth.shape[1]
    patch = Image.fromarray(mouth).resize((round(width), round(height)), Image.LANCZOS)
    head = Image.fromarray(rgba)
    head.alpha_composite(patch, (round((lx + rx) / 2 - width / 2), round(closed_mouth_top(rgba, eyes) - 2)))
    return np.asarray(head)


def family_of(stem: str) -> str:
    """The glyph's name without its skin-tone modifier: glyphs of one family share geometry."""
    return re.sub(r"-1f3f[b-f]", "", stem)


def eyes_by_glyph(renders: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Eye centres [lx, ly, rx, ry] per glyph: found, else the family's median, else everyone's."""
    found = {stem: find_eyes(rgba) for stem, rgba in renders.items()}
    found = {k: np.array([*v[0], *v[1]]) for k, v in found.items() if v is not None}
    if not found:
        raise SystemExit("no eyes found in any glyph")
    overall = np.median(np.stack(list(found.values())), axis=0)
    families: dict[str, list[np.ndarray]] = {}
    for stem, eyes in found.items():
        families.setdefault(family_of(stem), []).append(eyes)
    out = {}
    for stem in renders:
        if stem in found:
            out[stem] = found[stem]
        else:
            same = families.get(family_of(stem))
            out[stem] = np.median(np.stack(same), axis=0) if same else overall
    return out


def ffhq_box(eyes: np.ndarray) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in render pixels of the square that puts the eyes at the
    FFHQ layout's positions (EYE_X, EYE_Y)."""
    lx, ly, rx, ry = eyes
    side = (rx - lx) / (EYE_X[1] - EYE_X[0])
    left = (lx + rx) / 2 - side * (EYE_X[0] + EYE_X[1]) / 2
    top = (ly + ry) / 2 - side * EYE_Y
    return left, top, left + side, top + side


def compose(rgba: np.ndarray, eyes: np.ndarray, background: tuple[int, int, int]) -> Image.Image:
    """The glyph on a solid background, cropped to the FFHQ-layout square, OUT_SIZE px."""
    left, top, right, bottom = ffhq_box(eyes)
    pad = int(np.ceil(max(0.0, -left, -top, right - RENDER, bottom - RENDER))) + 1
    canvas = Image.new("RGBA", (RENDER + 2 * pad,) * 2, background + (255,))
    canvas.alpha_composite(Image.fromarray(rgba), (pad, pad))
    box = (left + pad, top + pad, right + pad, bottom + pad)
    return canvas.convert("RGB").resize((OUT_SIZE, OUT_SIZE), Image.LANCZOS, box=box)


def pastel(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(150, 246, size=3))


def model_backdrops(model: Path, count: int) -> list[tuple[int, int, int]]:
    """The backdrop colour of ``count`` samples of ``model`` (seeds 0…count-1, ψ 1): the mean
    of each image's outer 8 % frame, as 8-bit RGB."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import stylemix
    from stylemix.render import render_seeds, to_uint8
    images = to_uint8(render_seeds(stylemix.load_generator(model), list(range(count)), psi=1.0)).astype(np.float64)
    edge = max(1, round(0.08 * images.shape[1]))
    frame = np.ones(images.shape[1:3], dtype=bool)
    frame[edge:-edge, edge:-edge] = False
    return [tuple(int(round(v)) for v in image[frame].mean(axis=0)) for image in images]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="the npm .tgz, or its package/assets folder")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backdrops-from", type=Path, default=None, metavar="BASE",
                        help="take each head's backdrop colour from a sample of this model (default: pastel)")
    parser.add_argument("--open-smiles", action="store_true",
                        help="also write each head with an open, laughing mouth (STEM-open.png)")
    args = parser.parse_args(argv)
    glyphs = read_glyphs(args.source, wanted=lambda stem: is_head_glyph(stem)
                         or (args.open_smiles and stem in MOUTH_DONORS))
    donors = {stem: glyphs.pop(stem) for stem in sorted(MOUTH_DONORS) if stem in glyphs}
    if not glyphs:
        raise SystemExit(f"no head glyphs found in {args.source}")
    rng = np.random.default_rng(args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    renders = {stem: render_rgba(webp) for stem, webp in glyphs.items()}
    eyes = eyes_by_glyph(renders)
    backdrops = (model_backdrops(args.backdrops_from, len(renders)) if args.backdrops_from
                 else [pastel(rng) for _ in renders])
    missing = [stem for stem in MOUTH_DONORS if args.open_smiles and stem not in donors]
    if missing:
        raise SystemExit(f"{args.source} lacks the smileys {', '.join(missing)} that --open-smiles needs")
    mouths = [cut_open_mouth(render_rgba(webp)) for webp in donors.values()]
    for (stem, rgba), backdrop in zip(renders.items(), backdrops):
        compose(rgba, eyes[stem], backdrop).save(args.out_dir / f"{stem}.png")
        if mouths:
            mouth = mouths[rng.integers(len(mouths))]
            compose(with_open_smile(rgba, eyes[stem], mouth), eyes[stem], backdrop).save(
                args.out_dir / f"{stem}-open.png")
    print(f"wrote {len(renders) * (2 if mouths else 1)} heads to {args.out_dir}")


if __name__ == "__main__":
    main()
