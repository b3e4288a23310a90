"""What every handler of the page shares: the model caches, the export area, the order in which
images are computed, and the one wrapper that turns a user's mistake into a one-line message.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from ..errors import StylemixError
from ..toonify import Toonifier
from .exports import ExportArea
from .images import ParentCache
from .pairs import ModelCache, PairCache, friendly

log = logging.getLogger("stylemix.app")

USER_ERRORS = (StylemixError, OSError)

# show_progress_on for events that show no progress: no component at all.  Gradio's page
# re-reads every component that has ever shown an event's progress whenever any event changes
# state (several times per slider move), so each one left in that set costs every later move.
QUIET: tuple = ()


def shown_error(exc: Exception) -> gr.Error:
    """A user's mistake as the page shows it: its one-line reason, no traceback."""
    return gr.Error(friendly(exc), print_exception=False)


def user_errors(fn):
    """Handler wrapper: a StylemixError or OSError (bad file, no face, bad channel list, …) is
    shown on the page as its one-line reason and logged as one line, never as a traceback.
    Anything else is a bug and keeps Gradio's traceback."""
    def report(exc: Exception):
        log.warning("%s: %s", fn.__name__, friendly(exc))
        return shown_error(exc)

    if inspect.isgeneratorfunction(fn):  # streaming handlers stay generators (Gradio checks)
        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except USER_ERRORS as exc:
                raise report(exc) from None
        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            raise report(exc) from None
    return wrapper


def reveal():
    """Show a component kept hidden until it has something (a download), so the page has no
    empty boxes; chained after the handler, which itself returns plain values for API callers."""
    return gr.update(visible=True)


def session_of(request) -> str | None:
    return getattr(request, "session_hash", None)


class RenderOrder:
    """Main images first, panels after, and only for the newest slider state.

    Every main render takes a ticket for its session; a panel (parents, grid, toon) runs only
    while its ticket is still the session's newest, and waits while a main render *of its own
    session* is in flight, so a slider move never waits behind a panel of an older state for
    more than the one image that panel is drawing — and one visitor's panels never wait on
    another visitor's renders.
    """

    GRACE_S = 0.03  # lets a main render queued behind the one that just finished arrive first

    def __init__(self):
        self._latest: dict[str | None, int] = {}
        self._mains: dict[str | None, int] = {}   # main renders in flight, by session
        self._cond = threading.Condition()

    @contextmanager
    def main(self, session: str | None):
        with self._cond:
            ticket = self._issue(session)
            self._mains[session] = self._mains.get(session, 0) + 1
        try:
            yield ticket
        finally:
            with self._cond:
                self._mains[session] -= 1
                if not self._mains[session]:
                    del self._mains[session]
                self._cond.notify_all()

    def stamp(self, session: str | None) -> int:
        """A ticket for a main image that is ready without a render (drawn by another path):
        its panels are the newest, as if it had just been rendered."""
        with self._cond:
            return self._issue(session)

    def _issue(self, session: str | None) -> int:
        """The session's next ticket (the caller holds the lock)."""
        ticket = self._latest[session] = self._latest.get(session, 0) + 1
        return ticket

    def is_current(self, session: str | None, ticket) -> bool:
        return ticket is None or self._latest.get(session, 0) <= int(ticket)

    def panel_turn(self, session: str | None, ticket, first: bool = False) -> bool:
        """Wait until no main render of this session is in flight; False when a newer state has
        arrived."""
        if first:
            time.sleep(self.GRACE_S)
        with self._cond:
            while self._mains.get(session) and self.is_current(session, ticket):
                self._cond.wait(timeout=1.0)
            return self.is_current(session, ticket)

    def forget(self, session: str | None) -> None:
        with self._cond:
            self._latest.pop(session, None)


@dataclass
class Services:
    """The server-wide state behind the page (shared by every visitor)."""

    cache: PairCache
    models: ModelCache
    exports: ExportArea
    models_dir: Path
    max_upload_mb: int = 1024
    order: RenderOrder = field(default_factory=RenderOrder)
    parents: ParentCache = field(default_factory=ParentCache)

    def pair(self, key) -> Toonifier:
        toonifier = self.cache.get(key) if key else None
        if toonifier is None:
            raise StylemixError("load a model pair first (the Models section)")
        return toonifier

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 2 ** 20

    def forget_session(self, request: gr.Request) -> None:
        """A tab closed: drop its exports and its place in the render order."""
        self.exports.forget(session_of(request))
        self.order.forget(session_of(request))
