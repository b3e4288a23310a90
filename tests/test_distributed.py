"""Training on several ranks (torch.distributed with gloo, launched by torchrun, on this CPU):
the result depends on the global batch and the per-device batch, not on how many ranks run it;
a run resumes where it stopped, on another number of ranks too; a rank that dies stops the job
with one clear line and leaves the last snapshot intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylemix.cli import main as cli
from stylemix.train import read_trainer_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--resolution", "16", "--z-dim", "8", "--channel-base", "64", "--channel-max", "8",
        "--mapping-layers", "1"]


def _folder(path: Path, seed: int) -> Path:
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path / f"{i}.png")
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    faces, style = _folder(root / "faces", 1), _folder(root / "style", 2)
    assert cli(["train", str(faces), *TINY, "--kimg", "0.008", "--batch", "4", "-o", str(root / "base")]) == 0
    return root, style


def torchrun(ranks: int, *args: str, wait: bool = True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
           "-m", "stylemix", *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def finetune(setup, out: str, kimg: float, ranks: int | None = None):
    root, style = setup
    args = ["finetune", str(root / "base"), str(style), "--kimg", str(kimg), "--batch", "8", "--batch-gpu", "4",
            "--snapshot-kimg", "0.016", "-o", str(root / out)]
    if ranks is None:
        assert cli(args) == 0
    else:
        torchrun(ranks, *args)
    return read_trainer_checkpoint(root / out)


def same_networks(a: dict, b: dict) -> None:
    for key in ("G", "D", "G_ema"):
        for name, value in a[key].items():
            assert torch.allclose(value.float(), b[key][name].float(), atol=1e-6), f"{key}.{name}"


def test_two_ranks_give_the_one_process_result(setup):
    one, two = finetune(setup, "one", 0.024), finetune(setup, "two", 0.024, ranks=2)
    assert one["nimg"] == two["nimg"] == 24
    same_networks(one, two)
    base = read_trainer_checkpoint(setup[0] / "base")
    assert (one["G"]["synthesis.b16.torgb.weight"] - base["G"]["synthesis.b16.torgb.weight"]).abs().max() > 0


def test_resumed_on_another_number_of_ranks_ends_where_an_unbroken_run_ends(setup):
    straight = finetune(setup, "straight", 0.032)
    finetune(setup, "broken", 0.016, ranks=2)           # stopped here …
    resumed = finetune(setup, "broken", 0.032)           # … and resumed alone
    assert resumed["nimg"] == 32
    same_networks(straight, resumed)


def test_a_rank_that_dies_stops_the_job_with_one_line_and_the_snapshot_intact(setup):
    root, style = setup
    out = root / "dies"
    job = torchrun(2, "finetune", str(root / "base"), str(style), "--kimg", "5", "--batch", "8",
                   "--snapshot-kimg", "0.008", "-o", str(out), wait=False)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint.pt").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert (out / "checkpoint.pt").exists(), "no snapshot was written"
        workers = subprocess.run(["pgrep", "-f", "-P", str(job.pid), "stylemix"],
                                 capture_output=True, text=True).stdout.split()
        assert len(workers) == 2, workers
        os.kill(int(max(workers, key=int)), signal.SIGKILL)   # one rank dies
        output, _ = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    ckpt = read_trainer_checkpoint(out)
    assert ckpt is not None and ckpt["nimg"] % 8 == 0 and ckpt["nimg"] > 0
    # torchrun reports the dead worker; a surviving rank (if it got that far) says it in one line
    assert "lost the other ranks" in output or "Signal 9" in output or "SIGKILL" in output, output[-2000:]
