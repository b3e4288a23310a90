"""Without ../shared/fixtures the suite still collects, runs what does not need them, and fails
each test that does with one line saying what it needs (never a silent skip)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_missing_fixtures_fail_loudly_and_nothing_else_breaks(tmp_path):
    tests = ["tests/test_blend.py::test_spec_alphas",                    # needs no fixture
             "tests/test_blend.py::test_blend_records_its_recipe",       # through the nv_pair fixture
             "tests/test_blend.py::test_mismatched_pairs_name_the_first_difference",  # no fixture
             "tests/test_blend.py::test_mapping_depths_differ_cli_refuses_a_mix"]     # opens a file
    env = {**os.environ, "STYLEMIX_FIXTURES": str(tmp_path / "nowhere"), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfE", *tests],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert f"reference fixtures: {tmp_path / 'nowhere'} (MISSING" in out, out
    # The fixture-free tests pass; the one using nv_pair errors in setup, the other fails.
    assert "1 failed, 5 passed, 1 error" in out, out
    assert out.count("this test needs the reference fixtures, which are not at") >= 2, out
    assert "ERROR tests/test_blend.py::test_blend_records_its_recipe" in out, out
    assert "FAILED tests/test_blend.py::test_mapping_depths_differ_cli_refuses_a_mix" in out, out
