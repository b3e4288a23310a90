"""Slider → image in a real browser, against one bare render of the same network, same run.

    OMP_NUM_THREADS=1 python bench/app_latency.py [--moves 8] [--skip-config-f] [--route-only]

Two pairs: (a) a random 256 px config-f pair (z = w = 512, 8 mapping layers, channel_base
32768, channel_max 512, skip), built here and saved as .safetensors in a temporary folder; (b)
the default pair in models/.  The app is served in this process; Debian's chromium (driven by
Playwright) opens it, waits until every panel has drawn, then moves the lowest α slider to a
new value each time (never one drawn before, so no kept drawing can answer: at most 19 moves).  Each move is timed in the page, from the slider's input event to the new blend image
loaded (``performance.now()``; a MutationObserver and the image's load event, no polling), and is followed by one bare render of the same network in this
process (mapping + synthesis of one seed, no PNG) so both see the same background load; the page
is left to finish its panels (grid) before the next move.  Prints the medians, the ratio to the
bare render, the server-side figure the page shows, and the CPU work of one move: the page's
main-thread task time (Chrome's Performance.getMetrics) and this process's CPU time (server
threads), which tell a busy machine's waiting apart from work; and, as a baseline, the same
timing on a one-slider Gradio page that answers with a ready PNG (Gradio + chromium alone).
Each pair is timed twice: with the sliders' direct route (the app as it serves) and without it
(Gradio's events alone), the two serving paths issue 23 asked to compare.  Targets (issue 16): ≤ 1.5 × one render
for (a), ≤ 100 ms for (b).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from stylemix.render import render_seeds  # noqa: E402
from stylemix.ui import build_demo  # noqa: E402
from random_pair import random_pair  # noqa: E402  (bench/ is on sys.path)

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Move one range input to ``value`` and resolve with the ms until #view-blend shows a new,
# loaded image.  Event-driven (a MutationObserver, then the image's own load event), so
# the measurement itself adds no work to the page's main thread while it waits.
MOVE_JS = """
async ([selector, value]) => {
  const view = document.querySelector('#view-blend');
  const img = () => view.querySelector('img');
  const before = img() ? img().src : '';
  const input = document.querySelector(selector);
  const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  const shown = new Promise(resolve => {
    const check = () => {
      const i = img();
      if (!i || !i.src || i.src === before) return false;
      observer.disconnect();
      if (i.complete && i.naturalWidth > 0) resolve(); else i.addEventListener('load', resolve, {once: true});
      return true;
    };
    const observer = new MutationObserver(check);
    observer.observe(view, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
  });
  const t0 = performance.now();
  setValue.call(input, String(value));
  input.dispatchEvent(new Event('input', {bubbles: true}));
  input.dispatchEvent(new Event('change', {bubbles: true}));
  await shown;
  return performance.now() - t0;
}
"""


def config_f_256_pair(folder: Path) -> tuple[Path, Path]:
    """The issue's random 256 px config-f generator and a "fine-tuned" copy (every parameter
    nudged), written as .safetensors."""
    cfg = stylemix.GeneratorConfig(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, mapping_layers=8,
                                   channel_base=32768, channel_max=512, architecture="skip")
    A, B = random_pair(cfg)
    paths = folder / "configf256_base.safetensors", folder / "configf256_transfer.safetensors"
    for G, path in zip((A, B), paths):
        stylemix.save(G, path)
    return paths


def fresh_values(start: float, count: int) -> list[float]:
    """``count`` α values on the sliders' 0.05 grid, none equal to ``start`` or to each other,
    alternating between the ends of the range (large moves, each a blend never drawn)."""
    grid = [v for v in (round(0.05 * i, 2) for i in range(21)) if abs(v - start) > 1e-6]
    if count > len(grid):
        raise SystemExit(f"at most {len(grid) - 1} moves: each must go to a value not drawn before")
    order = [grid[i // 2] if i % 2 == 0 else grid[-1 - i // 2] for i in range(len(grid))]
    return order[:count]


def bare_render_ms(G, seed: int) -> float:
    t = time.perf_counter()
    render_seeds(G, [seed], psi=0.7)
    return (time.perf_counter() - t) * 1000


def grid_src(page) -> str:
    image = page.locator("#view-grid img")
    return (image.first.get_attribute("src") or "") if image.count() else ""


def settle(page, grid_before: str, timeout_s: float = 600) -> None:
    """Wait until the page's panels are done: the grid shows the new state when it follows
    every change (models up to 128 px), else nothing else renders after a move."""
    if page.locator("#grid-follows input").is_checked():
        page.wait_for_function("before => { const i = document.querySelector('#view-grid img');"
                               " return i && i.src && i.src !== before; }", arg=grid_before,
                               timeout=timeout_s * 1000)
    page.wait_for_timeout(1000)


def browser_busy_ms(cdp) -> float:
    """The page's main-thread task time so far (Chrome's Performance.getMetrics TaskDuration)."""
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["TaskDuration"] * 1000


def server_ms(page) -> float:
    match = re.search(r"([\d.]+) ms\s*on the server", page.locator("#timing").inner_text())
    return float(match.group(1)) if match else float("nan")


def measure(base: Path, transfer: Path, moves: int, label: str, route: bool = True) -> dict:
    """``route=False`` serves the page without the sliders' direct route (its requests get
    404 and the page waits for Gradio's event): the other serving path, for comparison."""
    from playwright import sync_api
    G = stylemix.load_generator(base)
    demo = build_demo(base, transfer)
    if not route:
        demo.extra_routes.clear()
        label += ", Gradio's events only"
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    browser_ms, bare_ms, server, busy_ms, cpu_ms = [], [], [], [], []
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(demo.local_url)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.wait_for_selector("#view-blend img", timeout=600_000)
            page.wait_for_selector("#view-transfer img", timeout=600_000)
            settle(page, "")
            selector = "[id^=alpha-] input[type=range]"
            start = float(page.locator(selector).first.input_value())
            targets = fresh_values(start, moves + 1)
            bare_render_ms(G, 0)  # warm-up
            for i in range(moves + 1):
                value = targets[i]
                grid_before = grid_src(page)
                busy, cpu = browser_busy_ms(cdp), time.process_time()
                ms = page.evaluate(MOVE_JS, [selector, value])
                busy, cpu = browser_busy_ms(cdp) - busy, (time.process_time() - cpu) * 1000
                settle(page, grid_before)
                bare = bare_render_ms(G, 0)
                if i:  # the first move warms the page's paths
                    browser_ms.append(ms)
                    busy_ms.append(busy)
                    cpu_ms.append(cpu)
                    server.append(server_ms(page))
                    bare_ms.append(bare)
            browser.close()
    finally:
        demo.close()
    result = {"pair": label, "resolution": G.img_resolution, "bare_ms": statistics.median(bare_ms),
              "browser_ms": statistics.median(browser_ms), "browser_min": min(browser_ms),
              "browser_max": max(browser_ms), "server_ms": statistics.median(server),
              "busy_ms": statistics.median(busy_ms), "cpu_ms": statistics.median(cpu_ms)}
    result["ratio"] = result["browser_ms"] / result["bare_ms"]
    return result


def gradio_floor_ms(moves: int) -> float:
    """The baseline: a one-slider, one-image Gradio page that answers with a pre-written PNG
    (no model), timed the same way — what Gradio and chromium cost here before any work."""
    import gradio as gr
    import numpy as np
    from PIL import Image
    from playwright import sync_api
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(Path(tmp) / f"{i}.png") for i in range(2)]
        for i, path in enumerate(paths):
            Image.fromarray(np.full((256, 256, 3), 80 * i + 40, np.uint8)).save(path)
        with gr.Blocks() as demo:
            slider = gr.Slider(0, 1, value=0, elem_id="alpha-floor")
            image = gr.Image(type="filepath", format="png", elem_id="view-blend")
            slider.change(lambda v: paths[int(v > 0.5)], slider, image, trigger_mode="always_last",
                          show_progress="hidden")
            demo.load(lambda: paths[0], None, image)
        demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
        try:
            with sync_api.sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(demo.local_url)
                page.wait_for_selector("#view-blend img", timeout=60_000)
                times = []
                for i in range(moves + 1):
                    times.append(page.evaluate(MOVE_JS, ["#alpha-floor input[type=range]", 1 - i % 2]))
                    page.wait_for_timeout(300)
                browser.close()
        finally:
            demo.close()
    return statistics.median(times[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=8)
    parser.add_argument("--skip-config-f", action="store_true")
    parser.add_argument("--route-only", action="store_true",
                        help="skip the comparison without the sliders' direct route")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {args.moves} slider moves per pair")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        pairs = [] if args.skip_config_f else [(*config_f_256_pair(Path(tmp)), "(a) random config-f 256 px",
                                                 "≤ 1.5 × one render")]
        pairs.append((ROOT / "models" / "base.safetensors", ROOT / "models" / "transfer.safetensors",
                      "(b) default pair (models/)", "≤ 100 ms"))
        targets = []
        for base, transfer, label, target in pairs:
            for route in (True, False)[:1 if args.route_only else 2]:
                results.append(measure(base, transfer, args.moves, label, route=route))
                targets.append(target)
    print("\n| pair | px | one bare render, ms | slider → image in the browser, ms (median; min–max) "
          "| × one render | server side (page's figure), ms | page main-thread busy, ms "
          "| server process CPU, ms | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r, target in zip(results, targets):
        print(f"| {r['pair']} | {r['resolution']} | {r['bare_ms']:.1f} | {r['browser_ms']:.1f} "
              f"({r['browser_min']:.1f}–{r['browser_max']:.1f}) | {r['ratio']:.2f} | {r['server_ms']:.1f} "
              f"| {r['busy_ms']:.1f} | {r['cpu_ms']:.1f} | {target} |")
    print(f"\nbaseline: a one-slider Gradio page answering with a ready PNG, same timing: "
          f"{gradio_floor_ms(args.moves):.1f} ms")


if __name__ == "__main__":
    main()
