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
from ..lru import LRU
from ..render_batch import RenderQueue
from ..toonify import Toonifier
from .exports import ExportArea
from .images import ParentCache, ShownFiles
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


def _guarded(fn, report, before=None):
    """``fn`` with a user's mistake (USER_ERRORS) raised as ``report(args, exc)``'s gr.Error
    instead; ``before(args)`` runs first. Streaming handlers stay generators (Gradio checks)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            if before:
                before(args)
            try:
                yield from fn(*args, **kwargs)
            except USER_ERRORS as exc:
                raise report(args, exc) from None
        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if before:
            before(args)
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            raise report(args, exc) from None
    return wrapper


def user_errors(fn):
    """Handler wrapper: a StylemixError or OSError (bad file, no face, bad channel list, …) is
    shown on the page as its one-line reason and logged as one line, never as a traceback.
    Anything else is a bug and keeps Gradio's traceback."""
    def report(args, exc: Exception):
        log.warning("%s: %s", fn.__name__, friendly(exc))
        return shown_error(exc)
    return _guarded(fn, report)


class Notes:
    """What the page says beside a control about a visitor's last action there — the reason it
    failed, or a remark ("2 faces: the largest is used") — until their next action there: a
    toast vanishes after seconds (or with the next one), a note does not.  Keyed by (session,
    place), stored as the Markdown shown; ``noted`` writes, ``shown`` reads."""

    def __init__(self, size: int = 4096):
        self._notes: LRU[tuple, str] = LRU(size)

    def put(self, session: str | None, where: str, markdown: str) -> None:
        self._notes.put((session, where), markdown)

    def text(self, session: str | None, where: str) -> str:
        return self._notes.get((session, where), "")

    def shown(self, where: str):
        """The page step that shows the note of ``where`` (empty when there is nothing to say)."""
        def show(request: gr.Request):
            return self.text(session_of(request), where)
        show.__name__ = f"show_{where}_note"
        return show


def show_note(event, notes: Notes, where: str, component) -> None:
    """After ``event``, worked or failed, show the note of ``where`` in ``component`` (Gradio's
    ``.then`` does not run after a failure: both outcomes are chained)."""
    step = notes.shown(where)
    for after in (event.success, event.failure):
        after(step, None, component, show_progress="hidden", show_progress_on=QUIET, api_name=False)


def note_markdown(text: str) -> str:
    return f"⚠ {text}" if text else ""


def noted(where: str):
    """Handler wrapper for a method of a page part with ``self.services``: like ``user_errors``,
    and the reason is also kept as the session's note for ``where`` (cleared by the next success
    there). The error raised is invisible on the page — the note shows it — and API callers
    still get it as an error. The handler must take a ``gr.Request``; it may put a note of its
    own (e.g. "2 faces: the largest is used") that the page then shows."""
    def decorate(fn):
        def put(args, markdown: str) -> None:  # args: (self, …, a gr.Request, …)
            session = next((session_of(a) for a in args if isinstance(a, gr.Request)), None)
            args[0].services.notes.put(session, where, markdown)

        def report(args, exc: Exception):
            log.warning("%s: %s", fn.__name__, friendly(exc))
            put(args, note_markdown(friendly(exc)))
            return gr.Error(friendly(exc), visible=False, print_exception=False)

        return _guarded(fn, report, before=lambda args: put(args, ""))
    return decorate


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
    notes: Notes = field(default_factory=Notes)
    files: ShownFiles = field(default_factory=ShownFiles)  # every image the page is sent
    renders: RenderQueue = field(default_factory=RenderQueue)  # main images: batched, one pass per pair at a time

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
