"""A real browser (Debian's chromium, driven by Playwright) uses the app as a visitor would: a
slider move shows the library's blend, a fast drag renders the last state and not every step,
the Mix tab opens rendered, a text file named .png gets its reason (no bare error badges), the
results sit above the fold with a portrait photo, and nothing is cut off.  The screenshot of the
first test is the one the README shows: set STYLEMIX_SCREENSHOT=assets/app_blend_tab.png to
refresh it.

Without chromium these tests skip with the command that installs it, unless
STYLEMIX_REQUIRE_BROWSER=1 (set by .ci/run), where its absence is an error.  STYLEMIX_CHROMIUM
names another chromium binary."""

from __future__ import annotations

import os
import shutil
import time
from io import BytesIO
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image
from skimage import data

from conftest import chromium_or_skip  # noqa: E402

CHROMIUM = chromium_or_skip()

from playwright import sync_api  # noqa: E402

import app  # noqa: E402
import stylemix  # noqa: E402
from stylemix.ui import spec_from_sliders  # noqa: E402
from stylemix.ui.images import shown  # noqa: E402
from measures import same_picture  # noqa: E402
from stylemix.render import render_seeds, to_uint8  # noqa: E402
from conftest import FIXTURES, need_fixtures  # noqa: E402

VIEWPORT = {"width": 1400, "height": 900}
SLIDERS = "[id^=alpha-] input[type=range]"

# Drag range input ``selector`` through ``values``: one input event per animation frame (16 ms),
# as a mouse drag makes them.
DRAG_JS = """
async ([selector, values]) => {
  const input = document.querySelector(selector);
  const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  for (const v of values) {
    setValue.call(input, String(v));
    input.dispatchEvent(new Event('input', {bubbles: true}));
    await new Promise(r => setTimeout(r, 16));
  }
  input.dispatchEvent(new Event('change', {bubbles: true}));
}
"""


@pytest.fixture(scope="module")
def served():
    demo = app.build_demo(app.DEFAULT_BASE, app.DEFAULT_TRANSFER)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, served):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(served)
    page.wait_for_selector("#view-blend img", timeout=120_000)
    page.wait_for_selector("#view-grid img", timeout=120_000)
    yield page
    page.close()


@pytest.fixture(scope="module")
def pair():
    return stylemix.load_generator(app.DEFAULT_BASE), stylemix.load_generator(app.DEFAULT_TRANSFER)


def src(page, selector: str) -> str:
    return page.locator(selector).first.get_attribute("src") or ""


def wait_for_new(page, selector: str, before: str, timeout_ms: int = 120_000) -> str:
    page.wait_for_function("([sel, before]) => { const i = document.querySelector(sel);"
                           " return i && i.src && i.src !== before && i.complete && i.naturalWidth > 0; }",
                           arg=[selector, before], timeout=timeout_ms)
    return src(page, selector)


def fetched(page, url: str) -> np.ndarray:
    from io import BytesIO
    return np.asarray(Image.open(BytesIO(page.request.get(url).body())))


def expected(pair, alphas, seed=0, psi=0.7) -> np.ndarray:
    spec = spec_from_sliders(pair[0].block_resolutions, alphas + [0] * (9 - len(alphas)), "base")
    return shown(to_uint8(render_seeds(stylemix.blend(*pair, spec), [seed], psi=psi))[0])


def visible_count(page, selector: str) -> int:
    """How many matches are really seen (no ancestor hidden, invisible or transparent)."""
    return page.locator(selector).evaluate_all(
        "els => els.filter(e => { for (let n = e; n && n !== document.body; n = n.parentElement) {"
        " const s = getComputedStyle(n);"
        " if (s.display === 'none' || s.visibility === 'hidden' || +s.opacity === 0) return false; }"
        " return true; }).length")


def slider_values(page) -> list[float]:
    return [float(v) for v in page.locator(SLIDERS).evaluate_all("els => els.map(e => e.value)")]


def count_main_renders(monkeypatch, renders: list) -> None:
    """Main images drawn (every one goes through the render queue): one entry per request."""
    from stylemix.render_batch import RenderQueue
    real = RenderQueue._images

    def counted(self, pair, requests):
        renders.extend(1 for _ in requests)
        return real(self, pair, requests)

    monkeypatch.setattr(RenderQueue, "_images", counted)


def test_moving_a_slider_shows_the_librarys_blend(page, pair, tmp_path, monkeypatch):
    """The move reaches the sliders' direct path, which draws the blend once; Gradio's event
    for the same move takes that drawing (no second render) and the page ends on it."""
    renders, previews = [], []
    count_main_renders(monkeypatch, renders)
    page.on("response", lambda r: previews.append(r) if "stylemix/preview.png" in r.url else None)
    before = src(page, "#view-blend img")
    assert "ms** on the server" not in page.locator("#timing").inner_text()  # rendered as text
    assert "ms on the server" in page.locator("#timing").inner_text()
    values = slider_values(page)
    values[0] = 0.0 if values[0] > 0.5 else 1.0  # the lowest resolution, wholly from the other model
    slider = page.locator(SLIDERS).first
    slider.fill(str(values[0]))
    slider.dispatch_event("change")
    after = wait_for_new(page, "#view-blend img", before)
    assert same_picture(fetched(page, after), expected(pair, values))
    page.wait_for_function("() => document.querySelector('#view-blend img').src.includes('gradio_api/file=')")
    page.wait_for_timeout(500)
    assert [r.status for r in previews] == [200]
    assert same_picture(np.asarray(Image.open(BytesIO(previews[0].body()))), expected(pair, values))
    assert same_picture(fetched(page, src(page, "#view-blend img")), expected(pair, values))
    assert renders == [1]  # one render for the move, whichever path asked first
    page.wait_for_timeout(1500)
    shot = tmp_path / "app_blend_tab.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("STYLEMIX_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["STYLEMIX_SCREENSHOT"])


def test_a_fast_drag_renders_the_last_state_not_every_step(page, pair, monkeypatch):
    """A drag: the page sends its newest position to the sliders' direct path, one request at
    a time, so the image follows the drag live; Gradio's events for the same moves take those
    drawings instead of rendering them again; the last position wins."""
    renders, previews = [], []
    count_main_renders(monkeypatch, renders)
    page.on("request", lambda r: previews.append(("sent", r.url)) if "stylemix/preview.png" in r.url else None)
    page.on("response", lambda r: previews.append((r.status, r.url)) if "stylemix/preview.png" in r.url else None)
    before = src(page, "#view-blend img")
    start = slider_values(page)[0]
    steps = [round(abs(start - 0.05 * i), 2) for i in range(1, 21)] + [0.35]  # 21 positions, ~0.35 s
    page.evaluate(DRAG_JS, [SLIDERS, steps])
    values = slider_values(page)
    assert values[0] == 0.35
    deadline = 120
    while deadline:
        after = wait_for_new(page, "#view-blend img", before)
        if same_picture(fetched(page, after), expected(pair, values)):
            break
        before, deadline = after, deadline - 1
    assert same_picture(fetched(page, after), expected(pair, values))  # the last state wins
    page.wait_for_timeout(2000)
    # One request at a time, each for a newer position than the one before, the last one last.
    kinds = [kind for kind, _ in previews]
    assert kinds[::2] == ["sent"] * (len(kinds) // 2) and all(k == 200 for k in kinds[1::2]), kinds
    positions = [int(parse_qs(urlsplit(url).query)["n"][0]) for kind, url in previews if kind == "sent"]
    assert positions == sorted(set(positions)) and positions[-1] == len(steps)
    # Every render is one of the direct path's drawings, but for at most two of Gradio's own.
    assert 1 <= len(renders) <= len(positions) + 2, (renders, positions)
    assert len(positions) < len(steps)  # positions passed while a drawing was made are skipped
    assert page.get_by_text("could not be rendered").count() == 0  # no event failed on the way


def test_quick_moves_of_different_sliders_end_on_the_blend_the_sliders_show(browser, served, pair):
    """Twelve moves of random sliders with no pause between them, soon after the page opened
    (faster than a hand, as a loaded machine makes a drag): the page sends only its newest move
    to the direct route, so each move carries every slider's value, and the image ends, and
    stays, on the sliders' own blend. Three fresh pages."""
    rng = np.random.default_rng(7)
    for trial in range(3):
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(served)
        page.wait_for_selector("#view-blend img", timeout=120_000)
        page.wait_for_timeout(1500)
        sliders = page.locator(SLIDERS).count()
        moves = [(int(rng.integers(sliders)), round(float(rng.integers(21)) * 0.05, 2)) for _ in range(12)]
        for move in moves:  # one call each: the moves interleave with the page's requests
            page.evaluate("""([i, v]) => { const s = document.querySelectorAll('[id^=alpha-] input[type=range]')[i];
              s.value = v; s.dispatchEvent(new Event('input', {bubbles: true}));
              s.dispatchEvent(new Event('change', {bubbles: true})); }""", list(move))
        page.wait_for_timeout(6000)
        values = slider_values(page)
        shown_now = fetched(page, src(page, "#view-blend img"))
        page.close()
        assert same_picture(shown_now, expected(pair, values)), (trial, moves, values)


def test_the_mix_tab_opens_rendered_with_the_main_sliders(page):
    main = slider_values(page)
    page.get_by_role("tab", name="Mix several models").click()
    page.wait_for_selector("#view-mix img", timeout=60_000)
    first_row = page.locator("[id^=mix-0-] input[type=range]").evaluate_all("els => els.map(e => +e.value)")
    assert first_row == main


def test_a_text_file_named_png_gets_the_clis_reason_and_no_error_badges(page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("a text file renamed .png")
    page.get_by_role("tab", name="Toonify").click()
    page.locator("#photo input[type=file]").set_input_files(str(fake))
    page.wait_for_timeout(1000)
    page.locator("#toonify").click()
    page.get_by_text("the file is not an image stylemix can read").wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    assert visible_count(page, "text=/^Error$/") == 0  # no red "Error" badge on any output


def test_layout_results_above_the_fold_nothing_cut_off(page, tmp_path):
    # The Blend tab's three images sit whole above the fold at 1400×900, and every action button
    # uses one font size.
    for name in ("base", "blend", "transfer"):
        box = page.locator(f"#view-{name}").bounding_box()
        assert box["y"] + box["height"] <= VIEWPORT["height"], name
    names = ("apply preset", "random seed", "draw the grid", "export .safetensors",
             "choose a template .pkl", "make GIF")
    sizes = [page.get_by_role("button", name=n, exact=True).first.evaluate(
        "b => getComputedStyle(b).fontSize") for n in names]
    assert len(set(sizes)) == 1, sizes
    # The preset's value and the export file name are shown whole.
    preset = page.locator("#preset input").first
    assert preset.input_value() == "toonify default"  # the blend the sliders open on
    assert preset.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    page.get_by_role("button", name="export .safetensors").click()
    page.wait_for_selector("#exported td.filename", timeout=60_000)
    name = page.locator("#exported td.filename").first
    full = name.get_attribute("aria-label")
    assert full.startswith("stylemix-res") and full.endswith(".safetensors")
    assert "".join(name.inner_text().split()) == full  # shown whole, not shortened
    assert name.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    # The export buttons' row holds just the buttons (no tall empty box beside them).
    button = page.get_by_role("button", name="export .pkl").bounding_box()
    row = page.locator("#export-row").bounding_box()
    assert row["height"] < 2 * button["height"]
    # The default pair is safetensors: the page says what a .pkl export needs, in its words.
    assert page.get_by_text("This pair's base is not a pickle").is_visible()
    # A portrait photo: the face, the reconstruction and the toon all above the fold.
    portrait = tmp_path / "portrait.png"
    Image.fromarray(data.astronaut()[:, 96:416]).resize((300, 480)).save(portrait)
    page.get_by_role("tab", name="Toonify").click()
    page.locator("#photo input[type=file]").set_input_files(str(portrait))
    page.wait_for_selector("#photo img", timeout=60_000)
    page.locator("#photo-steps input[type=number]").fill("20")
    page.locator("#photo-steps input[type=number]").press("Enter")
    page.locator("#toonify").click()
    for output in ("#toon-toon img", "#toon-aligned img", "#toon-reconstruction img"):
        page.wait_for_selector(output, timeout=120_000)  # a busy machine may fill them one by one
    for selector in ("#photo img", "#toonify", "#toon-aligned img", "#toon-reconstruction img", "#toon-toon img"):
        box = page.locator(selector).first.bounding_box()
        assert box["y"] + box["height"] <= VIEWPORT["height"], selector


def test_a_user_error_in_the_main_render_shows_its_reason(browser, tmp_path, caplog):
    """The blend image's own event: a conditional pair given a class it does not have says so
    on the page (its one-line reason in the note under the image, which a drawn blend clears),
    and in the server log as one line."""
    need_fixtures()
    field = FIXTURES / "field"
    demo = app.build_demo(field / "cond16_base.pkl", field / "cond16_transfer.pkl")
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(demo.local_url)
        page.wait_for_selector("#view-blend img", timeout=120_000)
        box = page.locator("#class-pick input")
        box.fill("9")
        box.press("Enter")
        note = page.locator("#blend-note")
        note.get_by_text("class 9 is out of range: this model has 4 classes, 0 to 3").wait_for(timeout=30_000)
        box.fill("2")
        box.press("Enter")
        page.wait_for_function("() => !document.querySelector('#blend-note').innerText.trim()", timeout=30_000)
        logged = [r for r in caplog.records if "class 9 is out of range" in r.getMessage()]
        assert len(logged) == 1 and "Traceback" not in caplog.text
    finally:
        page.close()
        demo.close()


def test_a_bad_upload_is_named_beside_the_photo_until_a_good_one_replaces_it(page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("a text file renamed .png")
    page.get_by_role("tab", name="Toonify").click()
    page.locator("#photo input[type=file]").set_input_files(str(fake))
    note = page.locator("#photo-note")
    note.get_by_text("the file is not an image stylemix can read").wait_for(timeout=30_000)
    page.wait_for_timeout(12_000)  # longer than a toast stays
    assert "not an image" in note.inner_text()
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    page.locator("#photo button[aria-label='Remove Image']").first.click()
    page.locator("#photo input[type=file]").set_input_files(str(photo))
    page.wait_for_function("() => !document.querySelector('#photo-note').innerText.includes('not an image')",
                           timeout=30_000)
    # Its toon, then a bad file again: the astronaut's results go with the astronaut.
    page.locator("#toonify").click()
    page.wait_for_selector("#toon-toon img", timeout=120_000)
    page.locator("#toonify-stop").click()
    page.locator("#photo button[aria-label='Remove Image']").first.click()
    page.locator("#photo input[type=file]").set_input_files(str(fake))
    note.get_by_text("send a JPEG, PNG or WebP photo").wait_for(timeout=30_000)
    page.wait_for_function("() => !document.querySelector('#toon-toon img') && !document.querySelector('#toon-aligned img')",
                           timeout=30_000)


def _toasts(page) -> int:
    return page.locator("[data-testid=toast-text]").count()


def test_a_mistake_is_said_beside_its_control_and_stays_until_fixed(page):
    """Issue 27 point 3: no toast that fades in 10 s; the reason sits by the control it concerns
    until the next action there, which clears it when it works."""
    # Exports: the default pair's .pt button is greyed out with its reason; a .pkl without a
    # template says what it needs under the export buttons.
    pt = page.locator("#export-pt")
    assert pt.is_disabled() and "rosinality's Generator cannot build" in pt.inner_text()
    page.locator("#export-pkl").click()
    note = page.locator("#export-note")
    note.get_by_text("choose such a .pkl as the template").wait_for(timeout=30_000)
    page.wait_for_timeout(11_000)  # longer than a toast lives
    assert note.get_by_text("choose such a .pkl as the template").is_visible()
    assert _toasts(page) == 0
    page.get_by_role("button", name="export .safetensors").click()
    page.wait_for_selector("#exported td.filename", timeout=60_000)
    page.wait_for_function("() => !document.querySelector('#export-note').innerText.trim()", timeout=10_000)
    # Models: a pair with one model missing is named under the Models controls, and goes
    # when a pair loads.
    page.get_by_text("Models", exact=True).first.click()
    page.get_by_role("button", name="load this pair").click()
    models_note = page.locator("#models-note")
    models_note.get_by_text("choose both a base and a transfer model").wait_for(timeout=30_000)
    assert _toasts(page) == 0


def test_toonify_pressed_at_once_after_an_upload_keeps_its_face(browser, tmp_path, monkeypatch):
    """The upload's clearing step is unqueued and lands after a Toonify pressed at once has
    started (CI saw "upload a photo first"): held here until that Toonify's align step has
    returned, so it always lands between the align and the projection, the toon still comes."""
    import functools
    import threading
    from stylemix.ui.toonify_tab import ToonifyTab
    forget, align = ToonifyTab.forget_results, ToonifyTab.align_photo
    aligned = threading.Event()

    @functools.wraps(align)
    def align_then_signal(*args, **kwargs):
        try:
            return align(*args, **kwargs)
        finally:
            aligned.set()

    def forget_late(self):
        aligned.wait(60)
        return forget(self)

    monkeypatch.setattr(ToonifyTab, "align_photo", align_then_signal)
    monkeypatch.setattr(ToonifyTab, "forget_results", forget_late)
    demo = app.build_demo(app.DEFAULT_BASE, app.DEFAULT_TRANSFER)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(demo.local_url)
        page.get_by_role("tab", name="Toonify").click()
        photo = tmp_path / "astronaut.png"
        Image.fromarray(data.astronaut()).save(photo)
        page.locator("#photo input[type=file]").set_input_files(str(photo))
        page.wait_for_selector("#photo img", timeout=60_000)
        page.locator("#toonify").click()
        page.wait_for_selector("#toon-toon img", timeout=120_000)
        page.wait_for_timeout(1000)
        assert "upload a photo first" not in page.locator("#photo-note").inner_text()
        for output in ("#toon-aligned img", "#toon-reconstruction img", "#toon-toon img"):
            assert page.locator(output).count() == 1, output  # nothing of it cleared by the late step
    finally:
        page.close()
        demo.close()
