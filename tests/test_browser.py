"""A real browser (Debian's chromium, driven by Playwright) opens the app, moves an α slider
and sees the blend change. The screenshot it takes is the one the README shows: set
STYLEMIX_SCREENSHOT=assets/app_blend_tab.png to refresh it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright import sync_api

import app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    raise RuntimeError("the browser test needs Debian's chromium: apt-get install -y chromium")


@pytest.fixture(scope="module")
def page_url():
    demo = app.build_demo(app.DEFAULT_BASE, app.DEFAULT_TRANSFER)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo.local_url
    demo.close()


def _blend_src(page) -> str:
    return page.locator("#view-blend img").first.get_attribute("src") or ""


def test_moving_a_slider_changes_the_blend_in_a_browser(page_url, tmp_path):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(page_url)
            page.wait_for_selector("#view-blend img", timeout=60_000)
            page.wait_for_function("document.querySelector('#timing') && "
                                   "document.querySelector('#timing').innerText.includes('ms')",
                                   timeout=60_000)
            before = _blend_src(page)
            assert before, "the blend image never appeared"

            # Take the lowest visible resolution wholly from the other model.
            slider = page.locator("[id^=alpha-] input[type=range]").first
            current = float(slider.input_value())
            slider.fill("0" if current > 0.5 else "1")
            slider.dispatch_event("change")
            page.wait_for_function(
                "before => { const img = document.querySelector('#view-blend img');"
                " return img && img.src && img.src !== before; }", arg=before, timeout=60_000)
            assert _blend_src(page) != before
            page.wait_for_timeout(500)
            shot = tmp_path / "app_blend_tab.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("STYLEMIX_SCREENSHOT"):
                shutil.copyfile(shot, os.environ["STYLEMIX_SCREENSHOT"])
        finally:
            browser.close()
