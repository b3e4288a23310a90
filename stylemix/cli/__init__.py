"""The ``stylemix`` command (``python -m stylemix``), built from the command tables of
:mod:`.models`, :mod:`.faces` and :mod:`.training`.

A mistake a user can make (a :class:`~stylemix.errors.StylemixError`, or an OSError such as a
missing folder or a full disk) prints one line, ``stylemix: error: …``, and exits 1. Anything
else is a bug: one line naming it and ``--debug`` (which shows the traceback), exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import StylemixError
from . import faces, models, training
from .common import DEFAULT_BASE, DEFAULT_TRANSFER, Command, spec_from_args  # noqa: F401  (public)
from .training import _pretrained  # noqa: F401  (used by tests)

COMMANDS: list[Command] = [*models.COMMANDS, *faces.COMMANDS, *training.COMMANDS]


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes look like every other stylemix error: one line, exit status 1
    (as the README says), pointing at --help instead of printing the usage block."""

    def error(self, message: str):
        self.exit(1, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="stylemix", description=(
        "Blend StyleGAN2 and StyleGAN3 generators by resolution (layer swapping). Reads NVIDIA .pkl, "
        "old TensorFlow .pkl, rosinality .pt and stylemix .safetensors files without running code from them."))
    p.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.configure(parser)
        parser.set_defaults(func=command.run)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except BrokenPipeError:  # the reader (e.g. `| head`) stopped listening: not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (StylemixError, OSError) as exc:
        print(f"stylemix: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001  (a bug: say so in one line, traceback on request)
        if args.debug:
            raise
        print(f"stylemix: internal error ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); "
              f"this is a bug: rerun with --debug for the traceback and report it", file=sys.stderr)
        return 2
    return 0
