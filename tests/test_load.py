"""Short load test: 16 concurrent sessions, different α and seeds, every answer exact."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("bench_load", Path(__file__).resolve().parents[1] / "bench" / "load.py")
bench_load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_load)


def test_sixteen_concurrent_sessions_get_their_own_blend():
    stats = bench_load.run(clients=16, requests=32, seed=1)
    assert stats["errors"] == 0
    assert stats["done"] == 32 and stats["mismatches"] == 0
