"""What a model file format declares, and the containers files come in.

Each format module (``nvidia_pkl``, ``tf_pkl``, ``rosinality``, ``native``) declares one
:class:`FileFormat`; ``formats/__init__.py`` holds the one table of them that the loader, the
CLI and the page read — the shape of diffusers' single-file loader tables.  A new format is a
module with its ``FORMAT`` and a row in that table, nothing else.

A file is first told by its container from its first bytes (:data:`PICKLE`, :data:`TORCH_SAVE`,
:data:`SAFETENSORS`); the container is read once (a pickle through the allow-list unpickler,
the others by their modules from the path), and the first format of that container whose
``claims`` accepts the contents reads it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .safe_pickle import safe_load_pickle

# What detect_format can tell from a file's first bytes: its container, not yet its contents.
PICKLE, TORCH_SAVE, SAFETENSORS = "pickle", "torch_save", "safetensors"


def _claims_any(contents) -> bool:
    return True


@dataclass(frozen=True)
class FileFormat:
    """One model file format.

    ``load(contents, path, network=, device=)`` returns the generator; ``load_discriminator(
    contents, path, device=)`` the file's discriminator or None (no function: the format
    holds none); ``load_with_discriminator(contents, path, device=)`` both, for a format that
    reads them more cheaply together (else the two above on the same contents).  ``contents``
    is the container as :func:`read_container` gives it.  ``save(G, path)`` writes one (None:
    not writable), given ``custom_channels=`` too when ``save_takes_custom_channels``;
    ``suffixes`` are the names such files have, the first one written by default when
    ``chosen_by_suffix``."""

    name: str                 # G.source.format, save(format=...)
    title: str                # how messages and the page name it: "NVIDIA .pkl"
    description: str          # what `stylemix info` calls it: "NVIDIA network pickle"
    container: str
    suffixes: tuple[str, ...]
    load: Callable
    load_discriminator: Callable | None = None
    load_with_discriminator: Callable | None = None
    save: Callable | None = None
    save_takes_custom_channels: bool = False
    chosen_by_suffix: bool = True
    claims: Callable[[object], bool] = _claims_any

    def discriminator(self, contents, path, device="cpu"):
        """The file's discriminator, or None."""
        if self.load_discriminator is None:
            return None
        return self.load_discriminator(contents, path, device=device)

    def generator_and_discriminator(self, contents, path, device="cpu"):
        """(generator, discriminator or None) from one read of the file."""
        if self.load_with_discriminator is not None:
            return self.load_with_discriminator(contents, path, device=device)
        return self.load(contents, path, device=device), self.discriminator(contents, path, device=device)


def read_pickle(data: bytes, locate_storages: bool = False, locate_arrays: bool = False):
    """A pickle's contents through the allow-list unpickler (nothing in it runs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's TypedStorage deprecation notice
        return safe_load_pickle(data, locate_storages=locate_storages, locate_arrays=locate_arrays)


def read_container(path: str | os.PathLike, container: str):
    """What the formats of ``container`` read: a pickle's root object (read once here, so
    the formats that share the container are told apart without a second read), else the
    path (rosinality and stylemix files are read by their modules)."""
    if container == PICKLE:
        return read_pickle(Path(path).read_bytes()).root
    return Path(path)
