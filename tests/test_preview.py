"""The sliders' direct path to the blend image (stylemix.ui.preview), without a browser: the
route applies one move to the session's last view and draws it once, Gradio's event for the
same view takes that drawing, and every bad request gets its status and one-line reason."""

import logging
import threading
import time
from types import SimpleNamespace

import gradio as gr
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stylemix.errors import StylemixError
from stylemix.ui.preview import ROUTE, Drawings, Drawn, Previews, view_key

# A view as the main render reads it: seed, ψ, pair key, channel pick, mapping, α 4…16, class.
VIEW = (0, 0.7, ("base-sha", "transfer-sha"), None, "base", 1.0, 1.0, 0.5, None)


class Recorder:
    """A stand-in for BlendTab.draw: records each view, writes a tiny file, can fail."""

    def __init__(self, tmp_path, delay=0.0):
        self.views, self.tmp_path, self.delay, self.fail = [], tmp_path, delay, None

    def __call__(self, session, view, start):
        if self.fail:
            raise self.fail
        time.sleep(self.delay)
        self.views.append(view)
        path = self.tmp_path / f"drawn-{len(self.views)}.png"
        path.write_bytes(b"\x89PNG" + repr(view).encode())
        drawn = Drawn(str(path), f"drawing {len(self.views)}", "label", path.read_bytes())
        path.unlink()  # the route answers from the session's memory, never from this file
        return drawn


@pytest.fixture
def served(tmp_path):
    """Previews over the Recorder, its route on a FastAPI app, one page session's token."""
    inputs = [gr.Number(), gr.Slider(0, 1.2, elem_id="psi"), gr.State(), gr.State(), gr.Radio(["base"]),
              *(gr.Slider(0, 1, elem_id=f"alpha-{r}") for r in (4, 8, 16)), gr.Number()]
    draw = Recorder(tmp_path)
    previews = Previews(inputs, draw)
    app = FastAPI(routes=previews.routes())
    request = SimpleNamespace(session_hash="session-1")
    html = previews.issue(request)
    token = html.split('data-token="')[1].split('"')[0]
    return SimpleNamespace(previews=previews, draw=draw, http=TestClient(app), token=token,
                           request=request, html=html)


def get(served, field="alpha-16", value="0.25", n=1, token=None, others=None):
    params = {"token": served.token if token is None else token, "field": field, "value": value, "n": n}
    return served.http.get(ROUTE, params=params if others is None else {**params, "others": others})


def test_the_page_learns_its_token_and_the_movable_sliders(served):
    assert 'data-fields="psi alpha-4 alpha-8 alpha-16"' in served.html
    assert len(served.token) >= 20


def test_a_move_is_the_last_view_with_one_slider_changed_drawn_once(served):
    assert get(served).status_code == 409  # nothing drawn yet: no view to move from
    path, text = served.previews.drawing("session-1", VIEW, time.perf_counter())
    assert served.draw.views == [VIEW] and text == "drawing 1"
    answer = get(served, "alpha-16", "0.25", n=2)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    moved = VIEW[:7] + (0.25,) + VIEW[8:]
    assert served.draw.views[-1] == moved
    assert answer.content == b"\x89PNG" + repr(served.draw.views[-1]).encode()  # the drawing's own bytes
    # Gradio's event for the same move (values as JSON numbers) takes that drawing.
    again = VIEW[:7] + (0.25000000000000006,) + VIEW[8:]
    path, text = served.previews.drawing("session-1", again, time.perf_counter())
    assert len(served.draw.views) == 2 and path.endswith("drawn-2.png") and text == "drawing 2"
    # The next move starts from there; ψ moves too.
    assert get(served, "psi", "0.5", n=3).status_code == 200
    assert view_key(served.draw.views[-1]) == view_key((0, 0.5) + moved[2:])


def test_a_move_carries_the_other_sliders_so_moves_never_sent_are_not_lost(served):
    """The page sends only its newest move; the ones it skipped (other sliders) come with it."""
    served.previews.drawing("session-1", VIEW, time.perf_counter())
    assert get(served, "alpha-16", "0.25", n=5, others="psi=0.5,alpha-4=0,alpha-8=0.75").status_code == 200
    assert view_key(served.draw.views[-1]) == view_key((0, 0.5) + VIEW[2:5] + (0.0, 0.75, 0.25) + VIEW[8:])


def test_bad_requests_get_their_status_and_reason(served):
    served.previews.drawing("session-1", VIEW, time.perf_counter())
    cases = [(dict(token="no-such-token"), 404, "unknown to the server (reload the page)"),
             (dict(field="seed"), 400, "'seed' is not a slider that can be moved here"),
             (dict(value="abc"), 400, "alpha-16 = 'abc' is not a number"),
             (dict(value="1.5"), 400, "alpha-16 = 1.5 is outside 0…1"),
             (dict(value="nan"), 400, "is outside 0…1"),
             (dict(others="alpha-4=2"), 400, "alpha-4 = 2 is outside 0…1"),
             (dict(others="seed=3"), 400, "'seed' is not a slider that can be moved here"),
             (dict(others="alpha-4"), 400, "'alpha-4' in others is not FIELD=VALUE")]
    for kwargs, status, reason in cases:
        answer = get(served, **kwargs)
        assert answer.status_code == status and reason in answer.text, (kwargs, answer.text)
        assert "\n" not in answer.text.strip()
    assert len(served.draw.views) == 1  # none of them drew


def test_a_user_error_is_answered_not_logged(served, caplog):
    served.previews.drawing("session-1", VIEW, time.perf_counter())
    served.draw.fail = StylemixError("class 9 is out of range 0…3")
    with caplog.at_level(logging.WARNING):
        answer = get(served)
    assert answer.status_code == 422 and answer.text == "class 9 is out of range 0…3"
    assert not caplog.records  # Gradio's event for the same move shows and logs it, once
    served.draw.fail = None
    assert get(served, n=2).status_code == 200  # a failed drawing is not kept


def test_an_older_move_waiting_for_its_turn_gives_way(served):
    served.previews.drawing("session-1", VIEW, time.perf_counter())
    served.draw.delay = 0.3
    answers = {}
    first = threading.Thread(target=lambda: answers.update(first=get(served, value="0.1", n=5)))
    first.start()
    time.sleep(0.1)  # the first is drawing; the next two wait for their turn
    threads = [threading.Thread(target=lambda n=n, v=v: answers.update({n: get(served, value=v, n=n)}))
               for n, v in ((6, "0.2"), (7, "0.3"))]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in (first, *threads):
        t.join()
    assert answers["first"].status_code == 200 and answers[7].status_code == 200
    assert answers[6].status_code == 204  # superseded by 7: never drawn
    assert [v[7] for v in served.draw.views[1:]] == [0.1, 0.3]


def test_a_closed_page_forgets_its_token(served):
    served.previews.forget(served.request)
    assert get(served).status_code == 404


def test_drawings_draw_a_view_once_when_two_paths_ask_together():
    drawings, calls, results = Drawings(), [], []

    def draw():
        calls.append(1)
        time.sleep(0.2)
        return Drawn("p", "t", "l", b"png")

    threads = [threading.Thread(target=lambda: results.append(drawings.get_or_draw(("k",), draw)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(mine for _, mine in results) == [False, True]


def test_view_key_treats_equal_numbers_as_equal():
    assert view_key((0, 0.3, ("a", "b"), {"res": 16, "alpha": 0.5}, "base", 1)) == \
        view_key((0.0, 0.30000000000000004, ["a", "b"], {"alpha": 0.5, "res": 16.0}, "base", 1.0))
    assert view_key((0, 0.3)) != view_key((0, 0.35))


def test_the_same_move_asked_again_gets_the_same_image(served):
    served.previews.drawing("session-1", VIEW, time.perf_counter())
    first = get(served, value="0.1", n=1)
    assert get(served, value="0.2", n=2).status_code == 200
    again = get(served, value="0.1", n=1)  # older than the newest move, but answered before
    assert again.status_code == 200 and again.content == first.content
    assert len(served.draw.views) == 3
