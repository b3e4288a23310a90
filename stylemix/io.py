"""File helpers every part of stylemix shares: content hashes, atomic writes, and reading a
``torch.save`` file without running code from it.

Nothing here knows about model formats; :mod:`stylemix.formats` builds on it, and so do the
exporters, the renderers and the trainer.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import torch

from .errors import ModelLoadError, UnsafeModelFileError


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk``-byte pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()  # what open() would give a new file


@contextmanager
def atomic_write(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds,
    so a failed or interrupted write never leaves half a file (or destroys the old one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes private files; exports are ordinary files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_zip_container(path: str | os.PathLike, name: str | None = None) -> None:
    """Refuse zip bombs before torch inflates anything: ``torch.save`` stores members
    uncompressed, so a compressed member, or members adding up to more than the file holds,
    is not a real torch file. Files that are not zip archives pass."""
    name = name or os.path.basename(path)
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelLoadError(f"{name} is a damaged zip archive ({exc})") from None
    size = os.path.getsize(path)
    for member in members:
        if member.compress_type != zipfile.ZIP_STORED:
            raise UnsafeModelFileError(
                f"refusing to load {name}: member '{member.filename}' is compressed, which "
                f"torch.save never does (it would inflate to {member.file_size} bytes)")
    declared = sum(m.file_size for m in members)
    if declared > size:
        raise ModelLoadError(f"{name} declares {declared} bytes of contents in a {size}-byte file")


def read_torch_file(path: str | os.PathLike, safe_globals=()) -> dict:
    """A ``torch.save`` dict read with ``weights_only=True``: tensors (storages mapped to the
    CPU), plain containers and numbers, plus the ``safe_globals`` stand-ins given (torch's
    ``(class, "module.Name")`` pairs); nothing from the file runs. Raises UnsafeModelFileError
    naming any other global, ModelLoadError for a damaged file or one that is not a dict."""
    name = os.path.basename(path)
    check_zip_container(path, name)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except ModelLoadError:
        raise
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found or "Weights only load failed" in str(exc):
            what = f"'{found.group(1)}'" if found else "an object that is not a plain tensor"
            raise UnsafeModelFileError(
                f"refusing to load {name}: it asks for {what}, which could run code") from None
        raise ModelLoadError(f"{name} is a corrupt torch file ({first_line(exc)})") from None
    except MemoryError:
        raise ModelLoadError(f"{name} declares more data than fits in memory") from None
    except Exception as exc:  # weights-only loading ran nothing: any failure means bad data
        raise ModelLoadError(f"{name} is truncated or corrupt ({first_line(exc)})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{name} holds a {type(data).__name__}, not a checkpoint dict")
    return data


def first_line(exc: BaseException) -> str:
    """An exception's message cut to one line of at most 160 characters (for one-line errors)."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]
