"""Where the app writes files for visitors to download: one private area per session.

Exports can be hundreds of MB (a blended 1024 px pickle), so they must not pile up in /tmp:
each visitor's files live in their own folder under one area owned by this server process,
files older than ``max_age_s`` are pruned on every write, and a session's folder is removed
when its browser tab goes away. Names come from the blend recipe, never from the visitor.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import time
from pathlib import Path

from .. import formats
from ..blend import BlendSpec, blend
from ..errors import ExportError


class ExportArea:
    def __init__(self, root: str | Path | None = None, max_age_s: float = 1800):
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="stylemix-exports-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age_s = max_age_s
        self._lock = threading.Lock()

    def session_dir(self, session: str | None) -> Path:
        """The folder of one session; the id is hashed so it cannot steer the path."""
        name = hashlib.sha256((session or "anonymous").encode()).hexdigest()[:16]
        return self.root / name

    def path_for(self, session: str | None, filename: str) -> Path:
        """A fresh path in the session's folder (old files are pruned first)."""
        self.prune()
        folder = self.session_dir(session) / f"{time.time_ns():x}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / Path(filename).name

    def prune(self, now: float | None = None) -> int:
        """Delete export folders older than max_age_s; returns how many went."""
        now = time.time() if now is None else now
        removed = 0
        with self._lock:
            for folder in self.root.glob("*/*"):
                try:
                    if now - folder.stat().st_mtime > self.max_age_s:
                        shutil.rmtree(folder, ignore_errors=True)
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def forget(self, session: str | None) -> None:
        """Remove everything a session exported (its tab closed)."""
        shutil.rmtree(self.session_dir(session), ignore_errors=True)


PICKLE_FORMATS = tuple(f.name for f in formats.TABLE if f.container == formats.PICKLE)

PKL_NEEDS_TEMPLATE = (
    "A .pkl is written into an existing NVIDIA or TensorFlow .pkl of the same network (a pickle "
    "carries NVIDIA's own code), and this pair's base is a {kind} file: choose such a .pkl as "
    "the template, or export .safetensors instead.")


def base_is_pickle(G_base) -> bool:
    """Whether a .pkl export can use the base's own file as its template."""
    return G_base.source is not None and G_base.source.format in PICKLE_FORMATS


def export_blend(G_base, G_transfer, spec: BlendSpec, suffix: str,
                 exports: ExportArea | None = None, session: str | None = None,
                 template: str | Path | None = None) -> str:
    """Write the blend (atomically) into the session's export folder; the name records the recipe.

    A .pkl goes into ``template`` when given, else into the base's own pickle; a base from
    another format without a template gets an ExportError in the page's words."""
    if suffix == ".pkl" and template is None and not base_is_pickle(G_base):
        known = formats.BY_NAME.get(getattr(G_base.source, "format", None))
        kind = known.title if known else "non-pickle"
        raise ExportError(PKL_NEEDS_TEMPLATE.format(kind=kind))
    name = f"stylemix-{spec.describe()}{suffix}"
    path = exports.path_for(session, name) if exports else Path(tempfile.mkdtemp(prefix="stylemix-")) / name
    formats.save(blend(G_base, G_transfer, spec), path, template=template if suffix == ".pkl" else None)
    return str(path)
