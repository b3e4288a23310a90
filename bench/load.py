"""Load test: many concurrent browser sessions with different α and seeds against one server.

    python bench/load.py [--clients 16] [--requests 512] [--base B --transfer T]

The server runs as its own process (`python app.py`), so the memory figures are the server's
alone: its resident memory (VmRSS from /proc) is sampled every 32 answered requests. Every
answer is compared with the library's own render for the same inputs (the page shows the
model pixels resampled to 256 px; equal up to rounding, stylemix.render.same_picture); prints requests/s, errors, mismatches and the memory series. Traffic
stays on 127.0.0.1. `run()` (used by the short test) serves in-process instead.
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylemix  # noqa: E402
from measures import same_picture  # noqa: E402
from stylemix.render import render_seeds, to_uint8  # noqa: E402
from stylemix.ui import ALL_RESOLUTIONS, build_demo  # noqa: E402
from stylemix.ui.images import shown as page_image  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "nvidia"


ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
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
    return page_image(to_uint8(render_seeds(stylemix.blend(*pair, spec), [seed], psi=psi))[0])


def _drive(url: str, pair, clients: int, requests: int, seed: int, rss, sample_at) -> dict:
    """``clients`` gradio_client sessions in parallel threads, each sending its share of random
    requests and comparing every answer with the library's render; ``rss()`` is sampled when
    ``sample_at(answers so far)`` says so, and once at the start and the end."""
    from gradio_client import Client
    stats = {"errors": 0, "mismatches": 0, "done": 0, "rss_mb": [rss()]}
    lock = threading.Lock()
    per_client = max(1, requests // clients)

    def session(i: int):
        rng = random.Random(seed * 1000 + i)
        client = Client(url, verbose=False)
        for _ in range(per_client):
            request = random_request(rng)
            try:
                shown = client.predict(request[0], request[1], request[2], *request[3],
                                       api_name="/render_blend")[0]
                pixels = np.asarray(Image.open(shown))
                ok = same_picture(pixels, expected_image(pair, request))
            except Exception:
                with lock:
                    stats["errors"] += 1
                continue
            with lock:
                stats["done"] += 1
                stats["mismatches"] += not ok
                if sample_at(stats["done"]):
                    stats["rss_mb"].append(rss())

    start = time.perf_counter()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats["seconds"] = time.perf_counter() - start
    stats["rss_mb"].append(rss())
    return stats


def run(clients: int, requests: int, seed: int = 0) -> dict:
    """The short version (used by the tests): the fixture pair served in this process."""
    base, transfer = FIXTURES / "skip64_base.pkl", FIXTURES / "skip64_transfer.pkl"
    pair = (stylemix.load_generator(base), stylemix.load_generator(transfer))
    demo = build_demo(base, transfer)
    demo.queue(default_concurrency_limit=clients).launch(
        prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    fifth = clients * max(1, requests // clients) // 5
    try:
        return _drive(demo.local_url, pair, clients, requests, seed, rss_mb,
                      lambda done: done == fifth)
    finally:
        demo.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(base: Path, transfer: Path, device: str = "cpu",
                  extra: tuple[str, ...] | list[str] = ()) -> tuple[subprocess.Popen, str]:
    """`python app.py` serving this pair in its own process (``extra``: more of its options),
    once it accepts connections."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--base", str(base),
                               "--transfer", str(transfer), "--port", str(port), "--device", device, *extra],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        if server.poll() is not None:
            raise RuntimeError("the app exited while starting")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, url
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the app did not start listening within a minute")


def run_separate(clients: int, requests: int, base: Path, transfer: Path, seed: int = 0) -> dict:
    """Load test against `python app.py` in its own process; samples that process's memory."""
    pair = (stylemix.load_generator(base), stylemix.load_generator(transfer))
    server, url = _start_server(base, transfer)
    try:
        return _drive(url, pair, clients, requests, seed, lambda: rss_mb(server.pid),
                      lambda done: done % 32 == 0)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--base", type=Path, default=ROOT / "models" / "base.safetensors")
    parser.add_argument("--transfer", type=Path, default=ROOT / "models" / "transfer.safetensors")
    args = parser.parse_args()
    s = run_separate(args.clients, args.requests, args.base, args.transfer)
    total = s["done"] + s["errors"]
    print(f"{args.base.name} + {args.transfer.name}: {args.clients} concurrent sessions, {total} "
          f"requests in {s['seconds']:.1f} s → {total / s['seconds']:.1f} requests/s "
          "(each: 3 renders + a 4-seed grid)")
    print(f"errors {s['errors']}, answers different from the library's render {s['mismatches']}")
    series = s["rss_mb"]
    print("server process memory (MB), every 32 requests: " + " ".join(f"{m:.0f}" for m in series))
    warm = series[len(series) // 5:]
    print(f"after warm-up: min {min(warm):.0f}, max {max(warm):.0f}, "
          f"last − first {warm[-1] - warm[0]:+.0f} MB")


if __name__ == "__main__":
    main()
