"""Build the stylised-domain training set: 3D cartoon heads from Microsoft's Fluent Emoji.

Source: the npm package `@lobehub/fluent-emoji-3d@1.1.0` (MIT licence), 256 px WebP renders.
Only the glyphs that show a head filling the frame are used (people, children, elders, hair
and beard variants, Santa, angel…) in every skin tone; body-and-head glyphs are left out
because their heads are small and placed differently. dlib finds no landmarks on these, so
one fixed box, measured once by eye, puts eyes and mouth where the base faces have them.
Each head is composited on a pastel background drawn from a seeded generator.

    npm pack @lobehub/fluent-emoji-3d@1.1.0     # writes lobehub-fluent-emoji-3d-1.1.0.tgz
    python tools/build_emoji_heads.py lobehub-fluent-emoji-3d-1.1.0.tgz data/emoji_heads

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
CROP_BOX = (40, 54, 216, 230)  # in the 256 px render: eyes near 45 %, mouth near 72 % height
OUT_SIZE = 128


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


def read_glyphs(source: Path) -> dict[str, bytes]:
    """{code-point name: WebP bytes} of the head glyphs, from the npm .tgz or its assets folder."""
    found: dict[str, bytes] = {}
    if source.is_dir():
        for path in sorted(source.glob("*.webp")):
            if is_head_glyph(path.stem):
                found[path.stem] = path.read_bytes()
        return found
    with tarfile.open(source, "r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name)
            if member.isfile() and name.suffix == ".webp" and is_head_glyph(name.stem):
                found[name.stem] = tar.extractfile(member).read()
    return dict(sorted(found.items()))


def compose(webp: bytes, background: tuple[int, int, int]) -> Image.Image:
    """The glyph cropped to the fixed box, on a solid background, OUT_SIZE square."""
    glyph = Image.open(io.BytesIO(webp)).convert("RGBA")
    if glyph.size != (256, 256):
        glyph = glyph.resize((256, 256), Image.LANCZOS)
    canvas = Image.new("RGBA", glyph.size, background + (255,))
    canvas.alpha_composite(glyph)
    return canvas.convert("RGB").crop(CROP_BOX).resize((OUT_SIZE, OUT_SIZE), Image.LANCZOS)


def pastel(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(150, 246, size=3))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="the npm .tgz, or its package/assets folder")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    glyphs = read_glyphs(args.source)
    if not glyphs:
        raise SystemExit(f"no head glyphs found in {args.source}")
    rng = np.random.default_rng(args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for stem, webp in glyphs.items():
        compose(webp, pastel(rng)).save(args.out_dir / f"{stem}.png")
    print(f"wrote {len(glyphs)} heads to {args.out_dir}")


if __name__ == "__main__":
    main()
