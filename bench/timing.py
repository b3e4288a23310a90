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
