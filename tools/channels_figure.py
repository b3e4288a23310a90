"""The README's channel-α picture: rows = seeds; columns = base, the Toonify swap at 16 px,
the same swap with the most influential 16 px channels taken back from base, transfer, and
where those channels changed the picture.

    python tools/channels_figure.py models/base.safetensors models/transfer.safetensors \
        --seeds 0-3 --top 16 -o assets/channels_example.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
import stylemix  # noqa: E402
from stylemix import BlendSpec
from stylemix.channels import rank_channels  # noqa: E402
from stylemix.engine import BlendEngine  # noqa: E402
from stylemix.render import make_grid, parse_seeds, render_seeds, to_uint8  # noqa: E402

SCALE = 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base")
    p.add_argument("transfer")
    p.add_argument("--seeds", default="0-3")
    p.add_argument("--res", type=int, default=16)
    p.add_argument("--top", type=int, default=4)
    p.add_argument("-o", "--out", required=True)
    args = p.parse_args()
    A, B = stylemix.load_generator(args.base), stylemix.load_generator(args.transfer)
    seeds = parse_seeds(args.seeds)
    swap = BlendSpec.swap(args.res)
    top = [e.channel for e in rank_channels(BlendEngine(A, B), swap, args.res, seeds)[:args.top]]
    with_channels = swap.with_channels(args.res, top, 0.0)
    columns = [("base", BlendSpec.linear(0.0)), (f"swap {args.res}", swap),
               (f"+{len(top)} ch from base", with_channels),
               ("transfer", BlendSpec.linear(1.0, mapping="transfer"))]
    blends = [stylemix.blend(A, B, spec) for _, spec in columns]
    tiles = []
    for seed in seeds:
        images = [render_seeds(G, [seed], psi=0.7) for G in blends]
        tiles += [to_uint8(img)[0] for img in images]
        # Where the chosen channels act: |swap − swap with channels|, ×4, as a grey map.
        diff = ((images[2] - images[1]).abs().mean(1, keepdim=True) * 4 - 1).repeat(1, 3, 1, 1)
        tiles.append(to_uint8(diff)[0])
    columns.append(("difference x4", None))
    tiles = np.stack([np.asarray(Image.fromarray(t).resize((t.shape[1] * SCALE, t.shape[0] * SCALE),
                                                           Image.NEAREST)) for t in tiles])
    grid = Image.fromarray(make_grid(tiles, columns=len(columns)))
    header = 18
    sheet = Image.new("RGB", (grid.width, grid.height + header), "white")
    sheet.paste(grid, (0, header))
    draw = ImageDraw.Draw(sheet)
    width = tiles.shape[2] + 2
    for i, (label, _) in enumerate(columns):
        draw.text((i * width + 4, 3), label, fill="black")
    sheet.save(args.out)
    print(f"wrote {args.out}: channels {top} of {args.res} px taken back from base")


if __name__ == "__main__":
    main()
