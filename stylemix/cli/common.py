"""What the commands share: devices, the model pair, the blend and class options, progress.

Each option used by several commands is declared here once."""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import sys

import torch

from .. import default_pair, formats
from ..blend import BlendSpec
from ..errors import BlendSpecError, ImageInputError, StylemixError
from ..networks import Generator
from ..render import check_class


@dataclass(frozen=True)
class Command:
    """One row of the command table: ``stylemix NAME`` with its one-line help, the function that
    declares its options on the subparser, and the function that runs it."""
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]


def add_device_option(parser) -> None:
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")


def device_for(name: str | None) -> str:
    if name:
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise StylemixError("--device cuda was asked for, but no CUDA GPU is available")
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_pair(base: str, transfer: str, device: str | None) -> tuple[Generator, Generator]:
    device = device_for(device)
    return formats.load_generator(base, device=device), formats.load_generator(transfer, device=device)


def class_index(args, *models: Generator) -> int | None:
    """``--class`` checked against the models about to render: required by a conditional one
    (the error names the option and the class count), ignored with a note by the others."""
    class_idx = getattr(args, "class_idx", None)
    conditional = [G for G in models if G.c_dim]
    for G in conditional:
        check_class(G, class_idx)
    if class_idx is not None and not conditional:
        print(f"note: --class {class_idx} ignored: the model is not class-conditional", file=sys.stderr)
        return None
    return class_idx


def spec_from_args(args) -> BlendSpec:
    chosen = [name for name in ("swap", "alpha", "smooth", "alphas") if getattr(args, name) is not None]
    if len(chosen) != 1:
        raise BlendSpecError("choose exactly one of --swap, --alpha, --smooth, --alphas")
    if args.swap is not None:
        spec = BlendSpec.swap(args.swap, low=args.low, mapping=args.mapping)
    elif args.alpha is not None:
        spec = BlendSpec.linear(args.alpha, mapping=args.mapping)
    elif args.smooth is not None:
        try:
            centre, width = (float(v) for v in args.smooth.split(","))
        except ValueError:
            raise BlendSpecError(f"--smooth wants CENTRE,WIDTH (e.g. 16,0.5), not '{args.smooth}'") from None
        spec = BlendSpec.smooth(centre, width, low=args.low, mapping=args.mapping)
    else:
        spec = BlendSpec.per_resolution(parse_alpha_table(args.alphas), mapping=args.mapping)
    for text in getattr(args, "channels", None) or []:
        spec = spec.with_channels(*parse_channel_option(text))
    outside = sorted({a for a in [spec.alpha, spec.mapping, *(a for _, a in spec.table),
                                  *(a for *_, a in spec.channel_table)]
                      if a is not None and not 0 <= a <= 1})
    if outside:
        print(f"note: α {', '.join(f'{a:g}' for a in outside)} lies outside [0, 1]: the blend "
              "extrapolates beyond base (α < 0) or transfer (α > 1)", file=sys.stderr)
    return spec


def parse_channel_option(text: str) -> tuple[int, list[int], float]:
    """'16:3+7+12=1' → (16, [3, 7, 12], 1.0)."""
    try:
        head, alpha = text.split("=")
        res, chans = head.split(":")
        return int(res), [int(c) for c in chans.split("+")], float(alpha)
    except ValueError:
        raise BlendSpecError(f"--channels wants RES:C+C+…=ALPHA (e.g. 16:3+7=1), not '{text}'") from None


def parse_alpha_table(text: str) -> dict[int, float]:
    table = {}
    for item in text.split(","):
        try:
            res, alpha = item.split(":")
            table[int(res)] = float(alpha)
        except ValueError:
            raise BlendSpecError(f"α lists look like 4:1,8:1,16:0.5, not '{item}'") from None
    return table


def add_blend_options(parser) -> None:
    how = parser.add_argument_group("blend (choose one)")
    how.add_argument("--swap", type=int, help="layer swap at this resolution, e.g. 16")
    how.add_argument("--alpha", type=float, help="one α at every resolution (0 = base, 1 = transfer)")
    how.add_argument("--smooth", help="CENTRE,WIDTH: logistic ramp centred at CENTRE px, WIDTH octaves")
    how.add_argument("--alphas", help="explicit α per resolution, e.g. 4:1,8:1,16:0.5 (unlisted = 0)")
    parser.add_argument("--low", default="transfer", choices=["base", "transfer"],
                        help="which model gives the low resolutions for --swap/--smooth (default transfer)")
    parser.add_argument("--mapping", default="base",
                        help="mapping network from base, transfer, blend (½) or a weight (default base)")
    parser.add_argument("--channels", action="append", metavar="RES:C+C…=ALPHA",
                        help="give single feature maps of one resolution their own α, e.g. "
                             "16:3+7=0 (repeatable; find channels with `stylemix channels`)")


def add_class_option(parser) -> None:
    parser.add_argument("--class", dest="class_idx", type=int, default=None, metavar="N",
                        help="class to render, for class-conditional models (required for them; "
                             "`stylemix info` shows how many classes a model has)")


def add_size_option(parser, what: str) -> None:
    parser.add_argument("--size", type=int, default=None, metavar="PX",
                        help=f"side of {what} in px (default: the model's size, enlarged to at "
                             "least 256 px with a Lanczos filter; 0 = the model's own size)")


@contextmanager
def naming(path) -> Iterator[None]:
    """A photo's error with the file's name in front: the library leaves paths out of its
    messages (the app shows them to visitors), but on the command line the user gave the name
    and may have given several."""
    try:
        yield
    except ImageInputError as exc:
        raise type(exc)(f"{Path(path).name}: {exc}") from None


def print_progress(step: int, total: int, loss: float) -> None:
    if step == total or step % max(1, total // 10) == 0:
        print(f"  step {step}/{total}  loss {loss:.4f}", file=sys.stderr)


DEFAULT_BASE = default_pair.default_base()


DEFAULT_TRANSFER = default_pair.default_transfer()

