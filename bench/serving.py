"""What one app process sustains for 1, 4 and 16 concurrent visitors, and its memory.

    OMP_NUM_THREADS=2 python bench/serving.py [--seconds 20] [--skip-config-f | --skip-default]

Starts ``python app.py`` as a separate process (the default pair, then a random 1024 px
config-f pair saved as .safetensors in a temporary folder), and lets N visitors (threads, each
its own gradio_client session) move sliders as fast as the server answers: every request is
``/render_blend`` with new α values, so no kept drawing answers. Prints renders/s and the median
request time for each N, against N = 1 in the same run, and the replica's resident memory
(RSS from /proc) once loaded and after the load.  Each pair is served twice: with the requests
that arrive together rendered in one batched pass (``--max-batch 16``, the app's default on a
GPU: ``RenderQueue``), and with ``--max-batch 1`` (each alone, the default on a CPU), the
baseline, in the same run.  On a GPU: add
``--device cuda``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from load import _start_server, rss_mb  # noqa: E402  (bench/load.py: the server process, its RSS)
from stylemix.render_batch import MAX_BATCH  # noqa: E402


def load(url: str, visitors: int, seconds: float) -> tuple[float, float, float]:
    """(renders/s, median seconds per request, mean requests per render pass) with
    ``visitors`` moving sliders at once."""
    from gradio_client import Client
    clients = [Client(url, verbose=False) for _ in range(visitors)]
    times: list[float] = []
    passes: list[int] = []  # how many requests shared each request's render pass
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def visit(i: int) -> None:
        rng = random.Random(i)
        while time.perf_counter() < stop:
            values = [round(rng.random(), 3) for _ in range(9)]
            start = time.perf_counter()
            timing = clients[i].predict(rng.randrange(1000), 0.7, "base", *values, api_name="/render_blend")[1]
            shared = re.search(r"one pass for (\d+) visitors", timing)
            with lock:
                times.append(time.perf_counter() - start)
                passes.append(int(shared.group(1)) if shared else 1)

    begin = time.perf_counter()
    threads = [threading.Thread(target=visit, args=(i,)) for i in range(visitors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(times) / (time.perf_counter() - begin), statistics.median(times), statistics.mean(passes)


def measure(name: str, base: Path, transfer: Path, args) -> None:
    rates = {}
    for max_batch in (1, MAX_BATCH):  # the baseline first: each request alone
        how = "each alone (--max-batch 1)" if max_batch == 1 else f"batched (--max-batch {max_batch})"
        extra = ["--max-batch", str(max_batch)]
        proc, url = _start_server(base, transfer, args.device, extra)
        try:
            print(f"\n{name}, {how}: replica RSS once loaded {rss_mb(proc.pid):.0f} MiB")
            for n in (1, 4, 16):
                rate, median, shared = load(url, n, args.seconds)
                rates[max_batch, n] = rate
                against = (f"{rate / rates[1, n]:.2f}x each alone" if max_batch != 1
                           else f"{rate / rates[1, 1]:.2f}x one visitor")
                print(f"  {n:2d} visitors: {rate:6.1f} renders/s ({against}), "
                      f"median request {median * 1e3:7.1f} ms, {shared:.1f} requests per pass")
            print(f"  replica RSS after the load {rss_mb(proc.pid):.0f} MiB")
        finally:
            proc.terminate()
            proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-config-f", action="store_true")
    parser.add_argument("--skip-default", action="store_true")
    args = parser.parse_args()
    from stylemix import default_pair
    print(f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"device {args.device}, {args.seconds:g} s per load")
    if not args.skip_default:
        measure("default pair (128 px)", default_pair.default_base(), default_pair.default_transfer(), args)
    if args.skip_config_f:
        return
    import stylemix
    from random_pair import random_pair
    cfg = stylemix.GeneratorConfig(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024,
                                   channel_base=32768, channel_max=512)
    with tempfile.TemporaryDirectory() as tmp:
        base, transfer = random_pair(cfg)
        stylemix.save(base, Path(tmp) / "base.safetensors")
        stylemix.save(transfer, Path(tmp) / "transfer.safetensors")
        del base, transfer
        measure("random 1024 px config-f pair", Path(tmp) / "base.safetensors",
                Path(tmp) / "transfer.safetensors", args)


if __name__ == "__main__":
    main()
