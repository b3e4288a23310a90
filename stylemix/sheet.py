"""A labelled contact sheet: rows = seeds; columns = base, every swap both ways, transfer.

It is the picture that explains layer swapping: reading a row left to right shows structure
and texture moving between the two models one resolution at a time.
"""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from .blend import BlendSpec, blend
from .networks import Generator
from .render import MIN_SAVED_SIZE, render_seeds, to_uint8

BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)


def sheet_columns(G_base: Generator) -> list[tuple[str, BlendSpec | None]]:
    """(label, spec) per column; None marks the two parents."""
    swaps = G_base.block_resolutions[:-1]
    cols: list[tuple[str, BlendSpec | None]] = [("base", None)]
    cols += [(f"T<={r}", BlendSpec.swap(r, low="transfer")) for r in swaps]
    cols += [(f"B<={r}", BlendSpec.swap(r, low="base")) for r in swaps]
    cols.append(("transfer", None))
    return cols


def contact_sheet(G_base: Generator, G_transfer: Generator, seeds: list[int], psi: float = 0.7,
                  cell: int | None = None, gutter: int = 4, class_idx: int | None = None) -> Image.Image:
    """Render the sheet; each image is resampled (Lanczos) to ``cell`` pixels, by default the
    model's size or at least MIN_SAVED_SIZE.  ``class_idx`` picks the class of a conditional pair."""
    cell = cell or max(G_base.img_resolution, MIN_SAVED_SIZE)
    columns = sheet_columns(G_base)
    images = []
    for label, spec in columns:
        G = (G_base if label == "base" else G_transfer) if spec is None else blend(G_base, G_transfer, spec)
        images.append(to_uint8(render_seeds(G, seeds, psi=psi, class_idx=class_idx)))
    font_size = max(12, cell // 12)  # labels stay readable on large cells
    font = ImageFont.load_default(size=font_size)
    header = font_size + 6
    width = len(columns) * (cell + gutter) + gutter
    height = header + len(seeds) * (cell + gutter) + gutter
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for c, (label, _) in enumerate(columns):
        x = gutter + c * (cell + gutter)
        text_w = draw.textlength(label, font=font)
        draw.text((x + (cell - text_w) / 2, 3), label, fill=INK, font=font)
        for r in range(len(seeds)):
            arr = images[c][r]
            tile = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).convert("RGB")
            tile = tile.resize((cell, cell), Image.LANCZOS) if tile.width != cell else tile
            sheet.paste(tile, (x, header + gutter + r * (cell + gutter)))
    return sheet
