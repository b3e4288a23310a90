"""Model pairs for the app: loaded once per file content, kept within a memory budget.

Visitors pick pairs from ``models/`` or upload their own; the same files uploaded twice (or
picked by two visitors) share one engine.  Paths are checked so a name from the page can only
reach ``models/`` or the upload area, and error messages never show server paths.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from .. import formats
from ..blend import check_compatible
from ..errors import ModelLoadError, StylemixError
from ..io import file_sha256
from ..lru import LRU
from ..toonify import Toonifier

MODEL_SUFFIXES = formats.MODEL_SUFFIXES  # every format's names (formats.TABLE)


log = logging.getLogger("stylemix.app")


def list_models(models_dir: Path) -> list[str]:
    """Generator file names in ``models_dir`` (no sub-folders, no hidden files, no encoders:
    an encoder is a .safetensors file too, but not a model to blend)."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir()
                  if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES and not p.name.startswith(".")
                  and not _is_encoder(p))


def _is_encoder(path: Path) -> bool:
    if path.suffix.lower() != ".safetensors":
        return False
    from ..encoder import read_encoder_metadata
    try:
        return "base_fingerprint" in read_encoder_metadata(path)
    except (StylemixError, OSError, ValueError):
        return False


def resolve_model(name: str, models_dir: Path) -> Path:
    """A name picked on the page → a file inside models_dir, or a clear refusal."""
    candidate = (models_dir / str(name)).resolve()
    if candidate.parent != models_dir.resolve() or not candidate.is_file():
        raise StylemixError(f"'{Path(str(name)).name}' is not one of the models offered here")
    return candidate


def check_upload(path: str, max_bytes: int) -> Path:
    """An uploaded file: a model suffix, within the size limit."""
    p = Path(path).resolve()
    if p.suffix.lower() not in MODEL_SUFFIXES:
        raise StylemixError(f"'{p.name}' is not a model file (.pkl, .pt or .safetensors)")
    size = p.stat().st_size
    if size > max_bytes:
        raise StylemixError(f"'{p.name}' is {size / 2**20:.0f} MB, over this server's "
                            f"limit of {max_bytes / 2**20:.0f} MB")
    return p


def file_id(path: Path) -> tuple:
    """Which file this is, without reading it: (real path, size, mtime).  Gradio stores an
    upload under a folder named by its content, so the same upload twice is the same file."""
    st = Path(path).stat()
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns


def content_key(G, path: Path) -> str:
    """The content hash the loader computed while reading the file (read once)."""
    source = getattr(G, "source", None)
    return source.sha256 if source is not None and source.sha256 else file_sha256(path)


def encoder_of(base: Path, G_base):
    """The encoder that goes with a base file (``default_pair.encoder_beside``), or None; one
    trained for other weights is left out with a log line (toonify then optimises)."""
    from ..default_pair import encoder_beside
    from ..encoder import load_encoder
    path = encoder_beside(base)
    if path is None:
        return None
    try:
        return load_encoder(path, base=G_base, device=G_base.mapping.w_avg.device)
    except ModelLoadError as exc:
        log.warning("not using %s: %s", Path(path).name, exc)
        return None


class PairCache:
    """Toonifiers (engine + models) by (base, transfer) content hash, least recently used out."""

    def __init__(self, device: str = "cpu", max_bytes: int = 4 << 30, compile: bool = False):
        self.device, self.max_bytes, self.compile = device, max_bytes, compile
        # (toonifier, bytes) by content key, within max_bytes (the newest pair always stays)
        self._pairs: LRU[tuple[str, str], tuple[Toonifier, int]] = LRU(weigh=lambda entry: entry[1],
                                                                      max_weight=max_bytes)
        self._keys_by_file: dict[tuple, tuple[str, str]] = {}
        self._key_of_file: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def load(self, base: Path, transfer: Path) -> tuple[tuple[str, str], Toonifier]:
        """The pair's engine, loading each file once: a file seen before is found by
        :func:`file_id`; a new one is keyed by the hash its loader computed, so identical
        content from another path shares the engine already built."""
        for path in (base, transfer):
            if not Path(path).is_file():
                raise ModelLoadError(f"no such model file: {Path(path).name}")
        ids = (file_id(base), file_id(transfer))
        with self._lock:
            key = self._keys_by_file.get(ids)
        found = self._pairs.get(key) if key else None
        if found is not None:
            return key, found[0]
        G_base, D = formats.load_generator_and_discriminator(base, device=self.device)
        G_transfer = formats.load_generator(transfer, device=self.device)
        key = (content_key(G_base, base), content_key(G_transfer, transfer))
        with self._lock:
            self._keys_by_file[ids] = key
            self._key_of_file.update(zip(ids, key))
        found = self._pairs.get(key)
        if found is not None:
            return key, found[0]
        check_compatible(G_base, G_transfer)
        toonifier = Toonifier(G_base, G_transfer, discriminator=D, encoder=encoder_of(base, G_base))
        if self.compile:
            toonifier.engine.compile()
        # Both parents, the engine's three flat copies: about five times one model's weights.
        size = 5 * sum(p.numel() * p.element_size() for p in G_base.parameters())
        self._pairs.put(key, (toonifier, size))
        return key, toonifier

    def known_key(self, path: Path) -> str | None:
        """The content key of a file some loaded pair was read from (None if never read)."""
        try:
            ident = file_id(path)
        except OSError:
            return None
        with self._lock:
            return self._key_of_file.get(ident)

    def get(self, key) -> Toonifier | None:
        entry = self._pairs.get(tuple(key)) if key else None
        return None if entry is None else entry[0]

    def __len__(self) -> int:
        return len(self._pairs)


def friendly(exc: Exception) -> str:
    """A loader's message with any server path reduced to its file name."""
    return re.sub(r"(?:/[^\s/:'\"]+)+/([^\s/:'\"]+)", r"\1", str(exc))


class ModelCache:
    """Single generators by content hash (the extra models of the Mix tab), least recently used out."""

    def __init__(self, device: str = "cpu", max_models: int = 8):
        self.device, self.max_models = device, max_models
        self._models: LRU[str, object] = LRU(max_models)
        self._keys_by_file: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def load(self, path: Path) -> str:
        """The model's content key, reading the file once (see PairCache.load)."""
        ident = file_id(path)
        with self._lock:
            key = self._keys_by_file.get(ident)
        if key is not None and self._models.get(key) is not None:
            return key
        G = formats.load_generator(path, device=self.device)
        key = content_key(G, path)
        with self._lock:
            self._keys_by_file[ident] = key
        self._models.get_or_put(key, lambda: G)
        return key

    def get(self, key: str):
        return self._models.get(key)
