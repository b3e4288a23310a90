"""One entry point for every model file format: detect it, load it safely, save to any of them.

The formats are one table, :data:`TABLE`, of what each module declares
(:class:`~stylemix.formats.registry.FileFormat`); the loader, the CLI and the page read it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ExportError, ModelLoadError
from ..networks import Generator
from ..networks.generator import StyleGenerator
from . import native, nvidia_pkl, rosinality, tf_pkl
from .common import ModelSource
from .registry import PICKLE, SAFETENSORS, TORCH_SAVE, FileFormat, read_container
from .safe_pickle import TORCH_LEGACY_MAGIC

# Within a container the first format that claims the contents reads it: a TF pickle is told
# by its (G, D, Gs) tuple, so it comes before NVIDIA's, which reads (or refuses) the rest.
TABLE: tuple[FileFormat, ...] = (tf_pkl.FORMAT, nvidia_pkl.FORMAT, rosinality.FORMAT, native.FORMAT)
BY_NAME = {f.name: f for f in TABLE}
FORMATS = tuple(f.name for f in TABLE if f.save is not None)  # what save() writes
# Every name a model file has: what the page lists and accepts as an upload.
MODEL_SUFFIXES = tuple(dict.fromkeys(s for f in TABLE for s in f.suffixes))
_SAVE_BY_SUFFIX = {s: f for f in TABLE if f.chosen_by_suffix for s in f.suffixes}


def _kinds() -> str:
    """'NVIDIA .pkl, rosinality .pt or stylemix .safetensors', from the table."""
    titles = [f.title for f in TABLE if f.chosen_by_suffix]
    return ", ".join(titles[:-1]) + " or " + titles[-1]


def detect_format(path: str | os.PathLike) -> str:
    """The kind of file, from its first bytes (never from its name alone): ``"pickle"`` (an
    NVIDIA or old TensorFlow network pickle — which one is told when it is read),
    ``"torch_save"`` (a ``torch.save`` file: a rosinality checkpoint, converted or from
    training, or a stylemix trainer checkpoint) or ``"safetensors"``. Raises ModelLoadError for
    a missing, empty, compressed or unknown file."""
    path = Path(path)
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder: give a model file in it")
    if not path.is_file():
        raise ModelLoadError(f"no such model file: {path}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
    if size == 0:
        raise ModelLoadError(f"{path.name} is empty")
    if head.startswith(b"PK\x03\x04"):
        return TORCH_SAVE   # torch.save zip archive
    if head.startswith(TORCH_LEGACY_MAGIC[:16]):
        return TORCH_SAVE   # torch.save legacy (pre-1.6) format
    if len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < size:
        return SAFETENSORS  # 8-byte header length, then a JSON header
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return PICKLE       # protocol 2-5
    if _looks_like_old_pickle(path, size):
        return PICKLE       # protocol 0 or 1: no PROTO header, text or early binary opcodes
    if head.startswith(b"\x1f\x8b"):
        raise ModelLoadError(f"{path.name} is gzip-compressed; decompress it first")
    raise ModelLoadError(f"{path.name} is not a model file stylemix knows (expected a file of one of these kinds: {_kinds()})")


# The opcodes a protocol 0/1 pickle of a dict or tuple (what NVIDIA and TF network pickles hold)
# opens with: MARK, EMPTY_DICT, EMPTY_TUPLE, EMPTY_LIST, GLOBAL ('c' module\nname\n).
_OLD_PICKLE_OPENERS = {"MARK", "EMPTY_DICT", "EMPTY_TUPLE", "EMPTY_LIST", "GLOBAL"}


def _looks_like_old_pickle(path: Path, size: int) -> bool:
    """Whether a file without a PROTO header is a pickle of protocol 0 or 1 (Python's
    ``pickle.dump(obj, f, protocol=0)``, text opcodes): it ends with STOP and its first opcodes
    parse as pickle opcodes, starting with one that builds a container (``pickletools``)."""
    import pickletools
    with open(path, "rb") as f:
        head = f.read(4096)
        f.seek(size - 1)
        last = f.read(1)
    if last != b".":
        return False
    try:
        ops = []
        for opcode, _, _ in pickletools.genops(head):
            ops.append(opcode)
            if len(ops) == 4:
                break
    except (ValueError, EOFError, UnicodeDecodeError):
        if len(ops) < 2:  # a longer opcode cut at the 4 KB mark is fine
            return False
    return bool(ops) and ops[0].name in _OLD_PICKLE_OPENERS and all(op.proto <= 1 for op in ops)


def open_model(path: str | os.PathLike) -> tuple[FileFormat, object]:
    """The file's format and its container as read once (see registry.read_container)."""
    container = detect_format(path)
    contents = read_container(path, container)
    for fmt in TABLE:
        if fmt.container == container and fmt.claims(contents):
            return fmt, contents
    raise ModelLoadError(f"{Path(path).name} is a {container} file of no kind stylemix reads")


def load_generator(path: str | os.PathLike, device="cpu", network: str = "G_ema") -> StyleGenerator:
    """Load a generator — StyleGAN2 (:class:`~stylemix.Generator`) or StyleGAN3
    (:class:`~stylemix.networks.stylegan3.Generator3`) — from any supported file, in eval mode,
    without running code from it. Raises ModelLoadError (or a subclass) naming what is wrong.

    ``network`` picks ``G_ema`` (default) or ``G`` from an NVIDIA pickle (``Gs``/``G`` of a
    TensorFlow one, ``g_ema``/``g`` of a rosinality checkpoint).
    """
    fmt, contents = open_model(path)
    return fmt.load(contents, path, network=network, device=device)


def load_discriminator(path: str | os.PathLike, device="cpu"):
    """The model file's discriminator when it has one we can rebuild (NVIDIA pickles, rosinality
    training checkpoints), else None."""
    fmt, contents = open_model(path)
    return fmt.discriminator(contents, path, device=device)


def load_generator_and_discriminator(path: str | os.PathLike, device="cpu"):
    """The generator and, when the file has one we can rebuild, its discriminator (else None).

    Reads the file once; projection uses D's features as an extra loss."""
    fmt, contents = open_model(path)
    return fmt.generator_and_discriminator(contents, path, device=device)


def format_for_path(path: str | os.PathLike) -> str:
    """The format an output name asks for, by its suffix; ExportError for any other name."""
    suffix = Path(path).suffix.lower()
    if suffix not in _SAVE_BY_SUFFIX:
        kinds = [f"{f.suffixes[0]} ({f.title.split()[0]})" for f in TABLE if f.chosen_by_suffix]
        raise ExportError(f"cannot tell the format from '{suffix or 'no extension'}': use "
                          f"{', '.join(kinds[:-1])} or {kinds[-1]}")
    return _SAVE_BY_SUFFIX[suffix].name


def save(G: Generator, path: str | os.PathLike, format: str | None = None,
         template: str | os.PathLike | None = None, custom_channels: bool = False) -> dict | None:
    """Write ``G`` atomically; the format follows the extension unless given.  Returns, for a
    rosinality ``.pt``, the ``Generator(size, style_dim, n_mlp, channel_multiplier)`` arguments
    that load it (see :func:`rosinality.generator_args`, which ``custom_channels`` is passed
    to); None for the other formats.

    ``.pkl`` writes a pickle of the kind G (or its blend base) was loaded from — an NVIDIA
    PyTorch pickle, or an old TensorFlow one — using that file as the template; a generator
    from any other format gets an ExportError saying so, unless ``template`` names a pickle
    (NVIDIA or TF) of the same shape to write into.
    """
    fmt = BY_NAME.get(format or format_for_path(path))
    if fmt is None or fmt.save is None:
        raise ExportError(f"unknown format '{format}' (choose from {', '.join(FORMATS)})")
    if template is not None:
        if fmt.container != PICKLE:
            raise ExportError("a template applies to .pkl output only")
        if detect_format(template) != PICKLE:
            raise ExportError(f"{Path(template).name} is not a pickle to use as a template")
        return nvidia_pkl.save(G, path, template=template)  # a TF template is written as TF
    source = BY_NAME.get(G.source.format) if G.source is not None else None
    if fmt.chosen_by_suffix and source is not None and source.container == fmt.container == PICKLE:
        fmt = source  # a .pkl of a TF base is a TF pickle again (its own file is the template)
    return fmt.save(G, path, **({"custom_channels": custom_channels} if fmt.save_takes_custom_channels else {}))


__all__ = ["BY_NAME", "FORMATS", "MODEL_SUFFIXES", "PICKLE", "SAFETENSORS", "TABLE", "TORCH_SAVE", "FileFormat",
           "ModelSource", "detect_format", "format_for_path", "load_discriminator", "load_generator",
           "load_generator_and_discriminator", "open_model", "save"]
