"""The benches' one timing rule: a warm-up call, then the median of ``repeat`` timed calls
(CUDA work is waited for, so GPU figures are real)."""

from __future__ import annotations

import statistics
import time

import torch


def median_ms(fn, repeat: int = 10) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def interleaved_medians_ms(fns: dict, repeat: int = 5) -> dict:
    """Median ms of each named call, timed in rounds of one call each (the order rotating every
    round), so that all of them see the same background load; a warm-up call each first."""
    for fn in fns.values():
        fn()
    names = list(fns)
    times = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            fns[name]()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - t) * 1000)
    return {name: statistics.median(ts) for name, ts in times.items()}
