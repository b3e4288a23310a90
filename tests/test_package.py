"""`pip install .` gives a library and a `stylemix` command that work outside the checkout,
with the default pair inside the installed copy (stylemix/default_models)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(ROOT)],
                   check=True, cwd=build, capture_output=True, text=True)
    return target


def run_outside(installed, code: str, cwd: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(installed))
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_installed_copy_finds_its_default_pair(installed, tmp_path):
    out = run_outside(installed, (
        "import stylemix, stylemix.default_pair as d, stylemix.cli as c\n"
        "print(stylemix.__file__); print(d.default_base()); print(c.DEFAULT_TRANSFER)\n"
        "G = stylemix.load_generator(d.default_base()); print(G.img_resolution)"), tmp_path)
    module, base, transfer, resolution = out.split()
    assert Path(module).is_relative_to(installed)
    assert Path(base) == installed / "stylemix" / "default_models" / "base.safetensors"
    assert Path(transfer).parent == Path(base).parent and Path(transfer).is_file()
    assert int(resolution) == stylemix.load_generator(ROOT / "models" / "base.safetensors").img_resolution


def test_installed_command_generates_from_the_default_pair(installed, tmp_path):
    out = tmp_path / "face.png"
    run_outside(installed, ("import sys; from stylemix.cli import main, DEFAULT_BASE\n"
                            f"sys.exit(main(['generate', str(DEFAULT_BASE), '--seeds', '3', "
                            f"'-o', {str(out)!r}]))"), tmp_path)
    assert out.is_file() and out.stat().st_size > 1000


import stylemix  # noqa: E402  (the checkout's copy, for the reference resolution)


def test_installed_copy_ships_the_pages_script(installed, tmp_path):
    """The sliders' direct path lives in stylemix/ui/preview.js, package data of stylemix.ui."""
    out = run_outside(installed, "import stylemix.ui.preview as p; print(p.INSTALL_JS.lstrip()[:9])", tmp_path)
    assert out.strip() == "() => {"
