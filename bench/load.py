"""Load test: many concurrent browser sessions with different α and seeds against one server.

    python bench/load.py [--clients 16] [--requests 500]

Every answer is compared with the library's own render for the same inputs (the page shows
the model pixels enlarged 4×); prints requests/s, errors, mismatches and the server process's
memory at the start, a fifth of the way in and at the end. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylemix  # noqa: E402
from stylemix.render import render_seeds, to_uint8  # noqa: E402
from stylemix.ui import ALL_RESOLUTIONS, build_demo  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "nvidia"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_request(rng: random.Random):
    alphas = [rng.choice([0, 0.25, 0.5, 1]) for _ in ALL_RESOLUTIONS]
    return rng.randrange(1000), rng.choice([0.5, 0.7, 1.0]), rng.choice(["base", "transfer"]), alphas


def expected_image(pair, request) -> np.ndarray:
    seed, psi, mapping, alphas = request
    spec = stylemix.ui.spec_from_sliders(pair[0].block_resolutions, alphas, mapping)
    return to_uint8(render_seeds(stylemix.blend(*pair, spec), [seed], psi=psi))[0]


def run(clients: int, requests: int, seed: int = 0) -> dict:
    from gradio_client import Client
    base, transfer = FIXTURES / "skip64_base.pkl", FIXTURES / "skip64_transfer.pkl"
    pair = (stylemix.load_generator(base), stylemix.load_generator(transfer))
    demo = build_demo(base, transfer)
    demo.queue(default_concurrency_limit=clients).launch(
        prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    stats = {"errors": 0, "mismatches": 0, "done": 0, "rss_mb": [rss_mb()]}
    lock = threading.Lock()
    per_client = max(1, requests // clients)

    def session(i: int):
        rng = random.Random(seed * 1000 + i)
        client = Client(demo.local_url, verbose=False)
        for _ in range(per_client):
            request = random_request(rng)
            try:
                shown = client.predict(request[0], request[1], request[2], *request[3],
                                       api_name="/render_blend")[1]
                pixels = np.asarray(Image.open(shown).convert("RGB"))[::4, ::4]
                ok = np.array_equal(pixels, expected_image(pair, request))
            except Exception:
                with lock:
                    stats["errors"] += 1
                continue
            with lock:
                stats["done"] += 1
                stats["mismatches"] += not ok
                if stats["done"] == clients * per_client // 5:
                    stats["rss_mb"].append(rss_mb())

    start = time.perf_counter()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats["seconds"] = time.perf_counter() - start
    stats["rss_mb"].append(rss_mb())
    demo.close()
    return stats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    s = run(args.clients, args.requests)
    total = s["done"] + s["errors"]
    print(f"{args.clients} concurrent sessions, {total} requests in {s['seconds']:.1f} s "
          f"→ {total / s['seconds']:.1f} requests/s (each: 3 renders + a 4-seed grid)")
    print(f"errors {s['errors']}, answers different from the library's render {s['mismatches']}")
    print("server process memory (MB): " + " → ".join(f"{m:.0f}" for m in s["rss_mb"]))


if __name__ == "__main__":
    main()
