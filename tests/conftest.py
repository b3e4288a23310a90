"""Shared test helpers: the reference fixtures beside the repo and small random generators.

The reference fixtures (model files made by the original code, with their renders) live in
``../shared/fixtures`` beside the checkout, as in CI; ``STYLEMIX_FIXTURES`` points elsewhere.
When they are absent the suite still collects and every test that does not need them runs;
each test that does need them FAILS (it is not skipped: a missing fixture would otherwise
pass for a green run that checked nothing) with one line saying that it needs them and where.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stylemix import Generator, GeneratorConfig

# The measures benchmarks and tests share (bench/measures.py) live outside the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

FIXTURES = Path(os.environ.get("STYLEMIX_FIXTURES")
                or Path(__file__).resolve().parents[1].parent / "shared" / "fixtures")
HAVE_FIXTURES = (FIXTURES / "nvidia" / "skip64_base.pkl").is_file()
NEEDS_FIXTURES = (f"this test needs the reference fixtures, which are not at {FIXTURES}: "
                  "clone the repository beside shared/ (as CI does) or set STYLEMIX_FIXTURES")

NV_BASE = FIXTURES / "nvidia" / "skip64_base.pkl"
NV_TRANSFER = FIXTURES / "nvidia" / "skip64_transfer.pkl"
ROSINALITY = FIXTURES / "rosinality" / "skip64_base_rosinality.pt"


def need_fixtures() -> None:
    """Fail the calling test with NEEDS_FIXTURES when the fixtures are absent."""
    if not HAVE_FIXTURES:
        pytest.fail(NEEDS_FIXTURES, pytrace=False)


def pytest_report_header(config):
    return f"reference fixtures: {FIXTURES}" + ("" if HAVE_FIXTURES else
                                                " (MISSING: the tests that read them will fail)")


def _about_fixtures(exc: BaseException) -> bool:
    """Did ``exc`` come from a fixture file that is not there?"""
    if HAVE_FIXTURES or str(exc) == NEEDS_FIXTURES:  # need_fixtures() already said it
        return False
    return str(FIXTURES) in str(exc) or str(FIXTURES) in str(getattr(exc, "filename", ""))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Without the fixtures, a test that failed for want of one says so in one line."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and _about_fixtures(call.excinfo.value):
        report.longrepr = f"{NEEDS_FIXTURES} ({call.excinfo.type.__name__}: {call.excinfo.value})"


@pytest.fixture(scope="session")
def renders():
    need_fixtures()
    return dict(np.load(FIXTURES / "nvidia" / "skip64_renders.npz"))


@pytest.fixture(scope="session")
def nv_pair():
    import stylemix
    need_fixtures()
    return stylemix.load_generator(NV_BASE), stylemix.load_generator(NV_TRANSFER)


def chromium_or_skip() -> str:
    """Debian's chromium for the browser tests (STYLEMIX_CHROMIUM names another). Without it the
    calling test module skips, naming the install command — or fails where
    STYLEMIX_REQUIRE_BROWSER=1 (.ci/run), so CI cannot pass without running them."""
    import shutil
    chromium = os.environ.get("STYLEMIX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        message = "the browser tests need Debian's chromium: apt-get install -y chromium"
        if os.environ.get("STYLEMIX_REQUIRE_BROWSER") == "1":
            raise RuntimeError(message + " (STYLEMIX_REQUIRE_BROWSER=1)")
        pytest.skip(message, allow_module_level=True)
    return chromium


def random_generator(seed: int = 0, **overrides) -> Generator:
    """A small generator with every parameter random (biases and noise strengths too)."""
    kwargs = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, channel_base=256,
                  channel_max=32, mapping_layers=2)
    kwargs.update(overrides)
    torch.manual_seed(seed)
    G = Generator(GeneratorConfig(**kwargs)).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.normal_()
    return G


def render(G, z, psi=1.0, c=None, **kwargs):
    with torch.no_grad():
        return G.synthesis(G.mapping(z, c, truncation_psi=psi), **kwargs)
