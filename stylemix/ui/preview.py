"""The slider's direct path to the blend image, beside Gradio's own event.

Through Gradio's events a slider move costs about 45 ms of the page's own code on a small CPU,
before the request leaves and after the answer comes (bench/RESULTS.md): more than one render
of the default 128 px pair.  So the page also sends each move of an α or ψ slider straight to
one small route,

    GET stylemix/preview.png?token=T&field=alpha-16&value=0.35&others=psi=0.7,alpha-4=1,…&n=7

which applies that change (and the page's values of the other sliders: the page sends only its
newest move, and the ones it skipped must not be lost) to the controls the session last
rendered with, draws the blend
and answers with its PNG (the same file the page offers: ≥ 256 px, Lanczos, lossless); a
script in the page shows it as soon as it has loaded, one request at a time, the newest move
last.  Gradio's event for the same move still runs and stays the source of truth (timing line,
panels, the image's value): it finds the drawing the route made, or waits for it, instead of
rendering again (:class:`Drawings`).

The route is part of the app from the start: :class:`PageBlocks` (the page's ``gr.Blocks``)
hands it to the FastAPI app ``launch()`` builds (``mount_gradio_app`` takes
``app_kwargs=demo.app_kwargs()``).  Each session gets an unguessable token from a page-load
event.  The route answers from the session's own memory (the PNG bytes of its recent
drawings), never from a file that another session's images may have replaced, and draws
through the same :class:`~stylemix.render_batch.RenderQueue` as Gradio's event, so both paths
share one limit: one pass per pair at a time.  Without the route or the script (an API
caller) nothing changes: Gradio's event draws the image as before.

Memory: each session keeps at most ``Drawings.keep`` + ``SessionView.ANSWERED`` drawings (the
same ones, mostly), ~100 KB each at 256 px; sessions beyond ``max_sessions`` are forgotten,
least recently used first (their page then asks to be reloaded).
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Callable

import gradio as gr

from ..lru import LRU
from .page import PageBlocks
from .services import USER_ERRORS, session_of
from .pairs import friendly

ROUTE = "/stylemix/preview.png"

# The page's script (preview.js), installed once per page by the token's load event.  The
# listener runs in the capture phase, so the request leaves before Gradio's own handlers start
# their work for the same move.  A drawing that fails (an error, or a newer move got there
# first: 204) leaves the image as it is.
INSTALL_JS = (Path(__file__).with_name("preview.js")).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Drawn:
    """One blend image as drawn for the page: its PNG file (for Gradio's event, which copies
    it at once), the timing line of its drawing, the blend's label, and the same PNG's bytes
    (for the route)."""

    path: str
    text: str
    label: str
    png: bytes


def reused_text(waited_ms: float, label: str) -> str:
    """The timing line of a request answered with a drawing made before (or being made) for
    the same controls: what this request waited, from its arrival to the PNG ready."""
    return (f"slider → image: **{waited_ms:.1f} ms** on the server (the drawing of these "
            f"controls made just before; {label})")


class Superseded(Exception):
    """A newer move of the same session arrived before this one's turn."""


class BadMove(Exception):
    """A move the route cannot take: ``status`` is its HTTP status, the message its reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def view_key(view) -> tuple:
    """A control state as a hashable key in which equal values compare equal (0, 0.0 and
    0.30000000000000004 and 0.3 alike: a slider's value reaches the server as text or as
    JSON)."""
    if isinstance(view, bool) or view is None or isinstance(view, str):
        return view
    if isinstance(view, (int, float)):
        return round(float(view), 6)
    if isinstance(view, dict):
        return tuple(sorted((k, view_key(v)) for k, v in view.items()))
    if isinstance(view, (list, tuple)):
        return tuple(view_key(v) for v in view)
    return repr(view)


class Drawings:
    """The blend images of one session's recent control states, drawn once whichever path
    (the route or Gradio's event) asks first; the other waits for it.  A failed drawing is
    forgotten, so asking again draws again."""

    def __init__(self, keep: int = 6):
        self.keep = keep
        self._futures: LRU[tuple, Future] = LRU(keep)

    def get_or_draw(self, key: tuple, draw: Callable[[], Drawn]) -> tuple[Drawn, bool]:
        """The drawing of ``key`` and whether this call made it."""
        fresh: Future = Future()
        future = self._futures.get_or_put(key, lambda: fresh)
        mine = future is fresh
        if mine:
            try:
                future.set_result(draw())
            except BaseException as exc:
                self._futures.pop_if(key, future)
                future.set_exception(exc)
        return future.result(), mine

    def has(self, key: tuple) -> bool:
        """Whether ``key`` is drawn or being drawn."""
        return key in self._futures


def since(start: float) -> float:
    """Milliseconds since ``start`` (a time.perf_counter() value)."""
    return (time.perf_counter() - start) * 1e3


@dataclass
class SessionView:
    """What the route knows of one session: its controls as last rendered, its newest move,
    how many of its moves are being answered."""

    session: str | None
    view: tuple | None = None
    newest: int = 0
    in_flight: int = 0
    idle: threading.Condition = field(default_factory=threading.Condition)
    turn: threading.Lock = field(default_factory=threading.Lock)
    drawings: Drawings = field(default_factory=Drawings)
    served: tuple = (None, "")  # (view key, timing line) of the route's latest image
    served_at: float = -math.inf  # time.monotonic() when the route last served an image
    answered: LRU = field(default_factory=lambda: LRU(SessionView.ANSWERED))  # n → Drawn, the latest moves

    ANSWERED = 4  # moves whose answer is kept

    def remember(self, n: int, drawn: Drawn) -> None:
        """A move's answer, so asking for the same URL again gets the same image."""
        self.answered.put(n, drawn)


@dataclass(frozen=True)
class Movable:
    """A slider the route may move: its place in the view and its range."""

    index: int
    minimum: float
    maximum: float


class Previews:
    """The route's side: tokens, each session's last view, and the drawing itself.

    ``inputs`` are the main render's inputs in order (the view); every ``gr.Slider`` among them
    with an ``elem_id`` can be moved through the route.  ``draw(session, view, start)`` draws one
    view (seconds from ``time.perf_counter()`` at ``start`` count into its timing line) and
    raises a user error (StylemixError, OSError) for a view it cannot draw.
    """

    # The longest Gradio's event waits for the route's moves in flight (they hold the engine,
    # which its own drawing would wait for too); only a safety net.
    IDLE_WAIT_S = 60.0
    HANDOVER_S = 0.25      # how long it waits for the route's next move during a drag
    ROUTE_IN_USE_S = 10.0  # the route counts as in use this long after it served a move

    def __init__(self, inputs: list, draw: Callable[[str | None, tuple, float], Drawn],
                 max_sessions: int = 512):
        self.draw = draw
        self.movable = {c.elem_id: Movable(i, float(c.minimum), float(c.maximum))
                        for i, c in enumerate(inputs) if isinstance(c, gr.Slider) and c.elem_id}
        self.max_sessions = max_sessions
        self._token_of: dict[str | None, str] = {}
        # sessions beyond max_sessions are forgotten, least recently seen first
        self._by_token: LRU[str, SessionView] = LRU(
            max_sessions, on_evict=lambda token, state: self._token_of.pop(state.session, None))
        self._lock = threading.Lock()
        # Views Gradio's event drew before the page-load step issued the session's token (the
        # two page-load events race): the token's SessionView starts from it.
        self._early_views: LRU[str | None, tuple] = LRU(max_sessions)
        self.token_html = gr.HTML("", elem_id="preview-token", visible="hidden")

    # -- Gradio's side -----------------------------------------------------------------------

    def wire(self, demo: gr.Blocks) -> None:
        """The token's page-load event, and the route on the page's app (a PageBlocks; on a
        plain gr.Blocks the page works without it, every image through Gradio's event)."""
        demo.load(self.issue, None, self.token_html, js=INSTALL_JS, show_progress="hidden",
                  show_progress_on=(), api_name=False, queue=False)
        demo.unload(self.forget)
        if isinstance(demo, PageBlocks):
            demo.add_routes(self.routes())

    def routes(self) -> list:
        """The route, for the app that serves the page."""
        from fastapi.routing import APIRoute
        return [APIRoute(ROUTE, self.respond, methods=["GET"], include_in_schema=False)]

    def issue(self, request: gr.Request) -> str:
        """Page load: a token for this session."""
        session = session_of(request)
        token = secrets.token_urlsafe(18)
        with self._lock:
            old = self._token_of.pop(session, None)
            if old:
                self._by_token.pop(old, None)
            self._token_of[session] = token
            self._by_token.put(token, SessionView(session, view=self._early_views.get(session)))
        return (f'<span data-token="{escape(token)}" '
                f'data-fields="{escape(" ".join(self.movable))}"></span>')

    def forget(self, request: gr.Request) -> None:
        with self._lock:
            token = self._token_of.pop(session_of(request), None)
            if token:
                self._by_token.pop(token, None)

    def drawing(self, session: str | None, view: tuple, start: float) -> tuple[str, str] | None:
        """Gradio's event: (PNG path, timing line) of ``view``, drawn by the route (or being
        drawn) or drawn now; None when the route has since drawn a newer move of the same
        sliders (this view is stale: the page already shows a newer one).  The view becomes
        the session's last known one.  The timing line is that of the image the visitor saw
        first: the route's when it served this view."""
        state = self._state_of(session)
        if state is None:
            drawn = self.draw(session, view, start)
            self._early_views.put(session, tuple(view))
            issued = self._state_of(session)  # the token may have been issued meanwhile
            if issued is not None and issued.view is None:
                issued.view = tuple(view)
            return drawn.path, drawn.text
        key, arrived = view_key(view), state.newest
        if self._left_to_route(state, key, view, arrived):
            return None
        drawn, mine = state.drawings.get_or_draw(key, lambda: self.draw(session, view, start))
        state.view = tuple(view)
        if mine:
            return drawn.path, drawn.text
        served_key, served_text = state.served
        text = served_text if served_key == key else reused_text(since(start), drawn.label)
        return drawn.path, text

    def _left_to_route(self, state: SessionView, key: tuple, view: tuple, arrived: int) -> bool:
        """Whether Gradio's event for ``view`` should leave it to the route: the route has
        since taken a newer move of the same sliders.  Waits first for the route's moves in
        flight (the page sends a move to the route before Gradio's event for it, so the
        drawing needed is usually among them), and, while the route is in use and the views
        differ in its sliders only, up to HANDOVER_S for the route's next move: during a drag
        the page sends its newest position there as soon as the last image has loaded."""
        expect_route = (self._moved_only(state.view, view)
                        and time.monotonic() - state.served_at < self.ROUTE_IN_USE_S)
        deadline = time.monotonic() + self.IDLE_WAIT_S
        handover = time.monotonic() + self.HANDOVER_S

        def decided() -> bool:
            if state.in_flight:
                return False
            return (not expect_route or state.drawings.has(key) or state.newest > arrived
                    or time.monotonic() >= handover)

        with state.idle:  # woken by every move's arrival and end
            while not decided() and time.monotonic() < deadline:
                until = deadline if state.in_flight else min(deadline, handover)
                state.idle.wait(timeout=max(0.001, until - time.monotonic()))
        return (not state.drawings.has(key) and state.newest > arrived
                and self._moved_only(state.view, view))

    def _moved_only(self, old: tuple | None, new: tuple) -> bool:
        """Whether two views differ in the route's sliders only (so the route can reach one
        from the other)."""
        if old is None or len(old) != len(new):
            return False
        indices = {m.index for m in self.movable.values()}
        return all(view_key(a) == view_key(b) for i, (a, b) in enumerate(zip(old, new)) if i not in indices)

    def _state_of(self, session) -> SessionView | None:
        with self._lock:
            token = self._token_of.get(session)
            return self._by_token.get(token) if token else None

    # -- the route ---------------------------------------------------------------------------

    def preview(self, token: str, field_name: str, value: str, n: int, start: float,
                others: str = "") -> Drawn:
        """One move through the route: ``field_name`` (a movable slider's elem_id) set to
        ``value`` on the session's last view, and every slider in ``others``
        (``"psi=0.7,alpha-4=1"``: the page's values of the sliders not moved, so moves the
        page never sent are not lost), drawn.  Raises BadMove, Superseded, or the drawing's
        user error."""
        with self._lock:
            state = self._by_token.get(token)
        if state is None:
            raise BadMove(404, "this page's session is unknown to the server (reload the page)")
        answered = state.answered.get(n)
        if answered is not None:  # the same URL again (a reload, a download)
            return answered
        with state.idle:
            state.newest = max(state.newest, n)
            state.in_flight += 1
            state.idle.notify_all()
        try:
            return self._move(state, self._changes(field_name, value, others), n, start)
        finally:
            with state.idle:
                state.in_flight -= 1
                state.idle.notify_all()

    def _changes(self, field_name: str, value: str, others: str) -> dict[int, float]:
        """The move as {index in the view: value}, each slider checked (BadMove 400)."""
        pairs = [(field_name, value)]
        for item in filter(None, others.split(",")):
            name, sep, text = item.partition("=")
            if not sep:
                raise BadMove(400, f"'{item}' in others is not FIELD=VALUE")
            pairs.append((name, text))
        changes = {}
        for name, text in pairs:
            slider = self.movable.get(name)
            if slider is None:
                raise BadMove(400, f"'{name}' is not a slider that can be moved here")
            try:
                number = float(text)
            except ValueError:
                raise BadMove(400, f"{name} = {text!r} is not a number") from None
            if not math.isfinite(number) or not slider.minimum <= number <= slider.maximum:
                raise BadMove(400, f"{name} = {text} is outside {slider.minimum:g}…{slider.maximum:g}")
            changes[slider.index] = number
        return changes

    def _move(self, state: SessionView, changes: dict[int, float], n: int, start: float) -> Drawn:
        with state.turn:  # one drawing per session at a time; a newer move skips the older
            if n < state.newest:
                raise Superseded()
            if state.view is None:
                raise BadMove(409, "the page has not drawn its first blend yet")
            view = list(state.view)
            for index, number in changes.items():
                view[index] = number
            view = tuple(view)
            key = view_key(view)
            drawn, mine = state.drawings.get_or_draw(key, lambda: self.draw(state.session, view, start))
            state.view = view
            state.served = key, drawn.text if mine else reused_text(since(start), drawn.label)
            state.served_at = time.monotonic()
            state.remember(n, drawn)
            return drawn

    def respond(self, token: str = "", field: str = "", value: str = "", n: int = 0, others: str = ""):
        """``GET stylemix/preview.png``: the PNG (200), 204 when a newer move came first, else
        a one-line reason as text (404 unknown session, 400 bad field or value, 409 nothing
        drawn yet, 422 a user error)."""
        from fastapi.responses import Response
        start = time.perf_counter()
        try:
            drawn = self.preview(token, field, value, n, start, others)
        except Superseded:
            return Response(status_code=204)
        except BadMove as exc:
            return Response(str(exc), status_code=exc.status, media_type="text/plain")
        except USER_ERRORS as exc:  # Gradio's event for the same move shows and logs it
            return Response(friendly(exc), status_code=422, media_type="text/plain")
        return Response(drawn.png, media_type="image/png",
                        headers={"Cache-Control": "no-store"})
