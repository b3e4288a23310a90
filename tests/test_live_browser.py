"""Live toonify in a real browser: chromium's fake camera plays a clip made from the astronaut
photo (public domain, shipped in scikit-image); the page streams frames to the server, the face
is tracked (the detector runs on a few frames only) and the toon follows the α sliders.

Skips without chromium unless STYLEMIX_REQUIRE_BROWSER=1 (as tests/test_browser.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from conftest import chromium_or_skip  # noqa: E402

CHROMIUM = chromium_or_skip()

from playwright import sync_api  # noqa: E402

import app  # noqa: E402
from stylemix.default_pair import default_encoder  # noqa: E402

SLIDERS = "[id^=alpha-] input[type=range]"


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    """Frames (H, W, 3) uint8 as a YUV4MPEG2 clip (4:2:0, full-range JPEG chroma)."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr"))
            f.write(b"FRAME\n" + ycc[..., 0].tobytes() + ycc[::2, ::2, 1].tobytes() + ycc[::2, ::2, 2].tobytes())


def clip_frames(moving: bool) -> list[np.ndarray]:
    photo = Image.fromarray(data.astronaut()).resize((400, 400))
    frames = []
    for i in range(10):
        frame = Image.new("RGB", (640, 480), (40, 40, 40))
        frame.paste(photo, (120 + (i * 3 if moving else 0), 40))
        frames.append(np.asarray(frame))
    return frames


@pytest.fixture(scope="module")
def served():
    if not default_encoder().is_file():
        pytest.fail("the default pair ships models/encoder.safetensors")
    demo = app.build_demo(app.DEFAULT_BASE, app.DEFAULT_TRANSFER)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo.local_url
    demo.close()


def _camera_page(pw, served, clip: Path):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}"])
    page = browser.new_context(viewport={"width": 1400, "height": 900}, permissions=["camera"]).new_page()
    page.goto(served)
    page.wait_for_selector("#view-blend img", timeout=120_000)
    page.get_by_role("tab", name="Toonify").click()
    page.locator("#live").get_by_text("Live: toonify your webcam").click()
    page.locator("#live-camera").get_by_text("Click to Access Webcam").click()
    page.locator("#live-camera button", has_text="Record").first.click()
    page.wait_for_selector("#live-toon img", timeout=60_000)
    return browser, page


def _toon_src(page) -> str:
    return page.locator("#live-toon img").first.get_attribute("src") or ""


def test_webcam_frames_are_tracked_and_toonified(served, tmp_path):
    clip = tmp_path / "moving.y4m"
    write_y4m(clip, clip_frames(moving=True))
    with sync_api.sync_playwright() as pw:
        browser, page = _camera_page(pw, served, clip)
        seen = set()
        for _ in range(40):
            seen.add(_toon_src(page))
            page.wait_for_timeout(100)
        status = page.locator("#live-status").inner_text()
        browser.close()
    assert len(seen) >= 3, "the live toon did not follow the stream"
    drawn = re.search(r"(\d+) detections", status)
    assert drawn, status
    # tracking: the 4 s of frames drawn needed only a few detector runs
    assert int(drawn.group(1)) <= 5, status


def test_moving_a_slider_changes_the_live_toon(served, tmp_path):
    clip = tmp_path / "still.y4m"
    write_y4m(clip, clip_frames(moving=False))
    with sync_api.sync_playwright() as pw:
        browser, page = _camera_page(pw, served, clip)
        page.wait_for_timeout(1500)
        before = page.locator("#live-toon img").first.screenshot()
        slider = page.locator(SLIDERS).first
        value = float(slider.input_value())
        slider.evaluate("(e, v) => { const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype,"
                        " 'value').set; set.call(e, String(v)); e.dispatchEvent(new Event('input', {bubbles: true}));"
                        " e.dispatchEvent(new Event('change', {bubbles: true})); }", 0.0 if value > 0.5 else 1.0)
        page.wait_for_timeout(2500)
        after = page.locator("#live-toon img").first.screenshot()
        page.wait_for_timeout(800)
        later = page.locator("#live-toon img").first.screenshot()
        browser.close()
    from io import BytesIO
    pix = [np.asarray(Image.open(BytesIO(b)).convert("RGB")).astype(int) for b in (before, after, later)]
    assert np.abs(pix[1] - pix[0]).mean() > 3, "the live toon did not change with the slider"
    assert np.abs(pix[2] - pix[1]).mean() < np.abs(pix[1] - pix[0]).mean() / 3  # and stays on the new blend
