"""Live toonify in chromium with a fake camera: toons the page shows per second.

    python bench/live_webcam.py [--seconds 10]

Chromium plays a clip made from scikit-image's astronaut (moving a few px a frame) as the
webcam; the page streams frames to the app (default pair, its encoder) and shows each toon.
Printed: distinct toon images the page displayed per second (what a visitor sees), the server's
own draw rate from the status line, detector runs (tracking) and frames dropped. Baseline in the
same run: one bare encode + render of an aligned face in this process (the pipeline's floor).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    from playwright import sync_api
    from test_live_browser import _camera_page, clip_frames, write_y4m

    import app
    from stylemix.toonify import default_toonify_spec
    demo = app.build_demo(app.DEFAULT_BASE, app.DEFAULT_TRANSFER)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    clip = Path(tempfile.mkdtemp()) / "clip.y4m"
    write_y4m(clip, clip_frames(moving=True))
    try:
        with sync_api.sync_playwright() as pw:
            browser, page = _camera_page(pw, demo.local_url, clip)
            page.wait_for_timeout(2000)
            # every src the toon image takes, recorded in the page as it changes
            page.evaluate("""() => { window.__srcs = new Set();
                const img = () => document.querySelector('#live-toon img');
                window.__poll = setInterval(() => { const i = img(); if (i && i.complete) window.__srcs.add(i.src); }, 10); }""")
            start = time.perf_counter()
            page.wait_for_timeout(args.seconds * 1000)
            shown = page.evaluate("() => window.__srcs.size")
            elapsed = time.perf_counter() - start
            status = page.locator("#live-status").inner_text()
            browser.close()
    finally:
        demo.close()
    # the floor: one encode + render in this process
    from PIL import Image
    from skimage import data

    from stylemix import load_generator
    from stylemix.default_pair import default_encoder
    from stylemix.encoder import load_encoder
    from stylemix.toonify import Toonifier
    G, T = load_generator(app.DEFAULT_BASE), load_generator(app.DEFAULT_TRANSFER)
    pair = Toonifier(G, T, encoder=load_encoder(default_encoder(), base=G))
    face = pair.align(Image.fromarray(data.astronaut()))[0].image
    spec = default_toonify_spec(G, T)
    pair.render(pair.encode(face), spec)
    t0 = time.perf_counter()
    for _ in range(20):
        pair.render(pair.encode(face), spec)
    floor = (time.perf_counter() - t0) / 20
    drawn = re.search(r"(\d+) frames/s drawn", status)
    print(f"browser: {shown / elapsed:.1f} toons/s shown over {elapsed:.0f} s; server status: {status}")
    print(f"baseline: encode + render of one aligned face {floor * 1000:.0f} ms ({1 / floor:.0f}/s) in process; "
          f"server draw incl. tracking + alignment: {drawn.group(1) if drawn else '?'} frames/s")


if __name__ == "__main__":
    main()
