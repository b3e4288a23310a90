"""The one training loop: every objective (GAN fine-tune, distillation, encoder) plugs into it.

The split is NVIDIA's ``training_loop`` + ``Loss.accumulate_gradients`` (StyleGAN2-ADA),
written here from scratch: an :class:`Objective` owns its networks, optimisers, data and losses
and says which *phases* run at a step (G, D, E…); the :class:`TrainingLoop` owns everything
else — the step counter in images shown (kimg), zeroing gradients, optimiser steps, progress
lines and bar, snapshots (checkpoint + the objective's artefacts + one ``metrics.jsonl`` line
with held-out scores), stopping and resuming, and distributed training (:mod:`.distributed`):
every phase's gradients come from the step's chunks, summed over the ranks.

Checkpoints hold plain tensors, numbers and strings only, so resuming reads them with
weights-only loading (:func:`stylemix.io.read_torch_file`) like any untrusted file. Their keys
are the objective's network names (``G``, ``D``, ``G_ema``, ``E``…), ``<name>_opt`` for
optimisers, ``nimg``, ``step``, ``seconds``, ``history`` and ``rng``: the layout the trainer and
the distiller wrote before they shared this loop, so their old checkpoints keep loading.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..errors import ModelLoadError
from ..io import atomic_write
from .distributed import Ranks, chunk_generator, split_batch

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1
METRICS_NAME = "metrics.jsonl"


@dataclass
class LoopConfig:
    """What the loop itself needs; each objective's config extends it with its own losses."""
    batch: int = 16                 # the global batch: over every rank and chunk of a step
    kimg: float = 100.0             # stop after this many thousand images (or latents) shown
    batch_gpu: int | None = None    # samples per forward pass (default: batch / ranks)
    seed: int = 0
    snapshot_kimg: float = 10.0     # checkpoint, artefacts and held-out metrics every this often
    log_every: int = 20             # a progress line every this many steps


@dataclass
class Phase:
    """One optimisation within a step: ``optimizer`` updates ``module`` from the gradients
    ``Objective.accumulate_gradients(name, …)`` leaves, except the ``frozen`` parameters (their
    gradients are dropped, so Adam leaves them and their moments untouched)."""
    name: str
    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    frozen: tuple = ()


@dataclass
class RunState:
    nimg: int = 0
    step: int = 0
    seconds: float = 0.0                          # time spent in steps (not snapshots)
    history: list = field(default_factory=list)   # one dict per snapshot (metrics.jsonl's lines)


class Objective:
    """What a training run optimises. Subclasses set ``tag`` (the checkpoint's ``format``),
    ``config_key`` and ``config`` (a :class:`LoopConfig`), and implement the methods below."""

    tag: str = ""
    config_key: str = "config"
    config: LoopConfig
    ranks: Ranks = Ranks()   # set by the loop: for statistics that must agree over ranks

    def networks(self) -> dict[str, torch.nn.Module]:
        """Every network a checkpoint must hold, by name."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser, by the name of the network it trains."""
        raise NotImplementedError

    def phases(self, state: RunState) -> list[Phase]:
        """The phases of the step about to run (e.g. D only once the adversarial term is on)."""
        raise NotImplementedError

    def accumulate_gradients(self, phase: str, state: RunState, rng: torch.Generator,
                             size: int) -> dict[str, float]:
        """Compute the phase's mean loss over ``size`` samples drawn with ``rng`` (one chunk of
        the step's batch) and call ``backward``; return statistics to log. Called once per
        chunk this rank runs; the loop averages the gradients."""
        raise NotImplementedError

    def end_step(self, state: RunState) -> None:
        """After every phase of a step (EMA updates)."""

    def describe(self) -> str:
        """The run's opening line."""
        return f"training {self.tag}"

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics for the snapshot's metrics line."""
        return {}

    def write_artifacts(self, out_dir: Path, state: RunState) -> None:
        """What a snapshot leaves besides the checkpoint (the shipped network, samples.png)."""

    def after_snapshot(self) -> str | None:
        """Called after each snapshot (e.g. to pick up new data); a line to log, or None."""
        return None

    def checkpoint_extras(self) -> dict:
        """Extra plain entries for the checkpoint (network configs)."""
        return {}


def mean_stats(sums: dict[str, list[float]]) -> dict[str, float]:
    return {k: sum(v) / len(v) for k, v in sums.items() if v}


class TrainingLoop:
    """Runs an :class:`Objective` to ``config.kimg``, resumable from its checkpoint."""

    def __init__(self, objective: Objective, out_dir: str | os.PathLike,
                 log: Callable[[str], None] = print, progress: bool = False, ranks: Ranks = Ranks()):
        self.objective, self.config, self.ranks = objective, objective.config, ranks
        objective.ranks = ranks
        self.chunk, self.chunks = split_batch(self.config.batch, self.config.batch_gpu, ranks)
        for net in objective.networks().values():
            ranks.broadcast(net)
        self.out_dir, self.progress = Path(out_dir), progress and ranks.is_main
        self.log = log if ranks.is_main else (lambda line: None)
        self.state = RunState()
        # Learning rates come from this run's config, also when a checkpoint's optimiser
        # moments are loaded (a resumed command may change them).
        self._lrs = {name: [g["lr"] for g in opt.param_groups]
                     for name, opt in objective.optimizers().items()}

    # --- one step ---------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        """Every phase the objective runs now — each over this rank's chunks of the batch, its
        gradients summed over the ranks and divided by the number of chunks — then the
        objective's end-of-step work (EMA). Returns this rank's mean statistics."""
        sums: dict[str, list[float]] = {}
        for index, phase in enumerate(self.objective.phases(self.state)):
            phase.module.requires_grad_(True)
            phase.optimizer.zero_grad(set_to_none=True)
            for chunk in self.ranks.chunks(self.chunks):
                rng = chunk_generator(self.config.seed, self.state.step, index, chunk)
                for k, v in self.objective.accumulate_gradients(phase.name, self.state, rng, self.chunk).items():
                    sums.setdefault(k, []).append(v)
            for p in phase.frozen:
                p.grad = None
            self.ranks.sum_gradients(phase.module)
            for p in phase.module.parameters():
                if p.grad is not None:
                    p.grad.div_(self.chunks)
            phase.optimizer.step()
            phase.module.requires_grad_(False)
        self.state.nimg += self.config.batch
        self.state.step += 1
        self.objective.end_step(self.state)
        return mean_stats(sums)

    # --- the loop ---------------------------------------------------------------------------
    def run(self, stop: Callable[[], bool] | None = None):
        """Train to ``config.kimg``: log every ``log_every`` steps, snapshot at every multiple
        of ``snapshot_kimg`` and at the end. ``stop()`` returning True ends the run early (a
        snapshot is still written). Returns the objective."""
        cfg = self.config
        total = int(cfg.kimg * 1000)
        every = max(int(cfg.snapshot_kimg * 1000), 1)
        next_snapshot = (self.state.nimg // every + 1) * every
        self.log(self.objective.describe() +
                 f" from {self.state.nimg / 1000:g} to {cfg.kimg:g} kimg (batch {cfg.batch})")
        bar = self._progress_bar(total)
        tick_start, tick_img = time.perf_counter(), self.state.nimg
        tick, interval = {}, {}
        while self.state.nimg < total:
            if stop is not None and stop():
                break
            start = time.perf_counter()
            for k, v in self.step().items():
                tick.setdefault(k, []).append(v)
                interval.setdefault(k, []).append(v)
            self.state.seconds += time.perf_counter() - start
            if bar is not None:
                bar.update(self.config.batch)
            if self.state.step % cfg.log_every == 0 or self.state.nimg >= total:
                sec_per_kimg = (time.perf_counter() - tick_start) / max(self.state.nimg - tick_img, 1) * 1000
                self._log(f"kimg {self.state.nimg / 1000:7.3f}/{cfg.kimg:g}  {sec_per_kimg:6.1f} s/kimg  "
                          + "  ".join(f"{k} {v:.4f}" for k, v in mean_stats(tick).items()), bar)
                tick_start, tick_img, tick = time.perf_counter(), self.state.nimg, {}
            if self.state.nimg >= next_snapshot:
                if self.ranks.is_main:
                    self.save(mean_stats(interval), bar)
                interval = {}
                next_snapshot = (self.state.nimg // every + 1) * every
                note = self.objective.after_snapshot()
                if note:
                    self._log(note, bar)
        if bar is not None:
            bar.close()
        if self.ranks.is_main and (not self.state.history or
                                   self.state.history[-1]["kimg"] != self.state.nimg / 1000):
            self.save(mean_stats(interval))
        self.ranks.barrier()  # the other ranks wait for rank 0's last snapshot
        return self.objective

    def _progress_bar(self, total: int):
        if not self.progress:
            return None
        from tqdm import tqdm
        # disable=None: no bar where stderr is not a terminal (logs of background runs)
        return tqdm(total=total, initial=min(self.state.nimg, total), unit="img", unit_scale=True,
                    dynamic_ncols=True, disable=None, leave=False)

    def _log(self, line: str, bar=None) -> None:
        if bar is not None and not bar.disable:
            bar.clear()
        self.log(line)
        if bar is not None and not bar.disable:
            bar.refresh()

    # --- snapshots ------------------------------------------------------------------------------
    def save(self, train_stats: dict[str, float] | None = None, bar=None) -> None:
        """Write checkpoint.pt (everything needed to resume), the objective's artefacts and a
        metrics.jsonl line: kimg, seconds, the interval's mean training statistics, held-out
        metrics (``val_*``)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        entry = {"kimg": self.state.nimg / 1000, "seconds": round(self.state.seconds, 1)}
        entry.update({k: round(v, 5) for k, v in (train_stats or {}).items()})
        entry.update({k: round(v, 4) for k, v in self.objective.evaluate().items()})
        self.state.history.append(entry)
        obj = self.objective
        ckpt = {"format": obj.tag, "version": CHECKPOINT_VERSION,
                obj.config_key: dataclasses.asdict(obj.config), **obj.checkpoint_extras()}
        ckpt.update({name: net.state_dict() for name, net in obj.networks().items()})
        ckpt.update({f"{name}_opt": opt.state_dict() for name, opt in obj.optimizers().items()})
        ckpt.update({"nimg": self.state.nimg, "step": self.state.step, "seconds": self.state.seconds,
                     "history": json.dumps(self.state.history)})
        with atomic_write(self.out_dir / CHECKPOINT_NAME) as tmp:
            torch.save(ckpt, tmp)
        obj.write_artifacts(self.out_dir, self.state)
        with open(self.out_dir / METRICS_NAME, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self._log("snapshot " + "  ".join(f"{k} {v}" for k, v in entry.items()), bar)

    def load_state(self, ckpt: dict) -> None:
        """Continue from a checkpoint of the same networks: optimiser moments and progress come
        from it (the data of each step follows from its number); learning rates from this run's
        config."""
        for name, opt in self.objective.optimizers().items():
            if f"{name}_opt" in ckpt:
                opt.load_state_dict(ckpt[f"{name}_opt"])
            for group, lr in zip(opt.param_groups, self._lrs[name]):
                group["lr"] = lr
        history = ckpt.get("history", [])
        self.state = RunState(nimg=int(ckpt["nimg"]), step=int(ckpt["step"]),
                              seconds=float(ckpt.get("seconds", 0.0)),
                              history=json.loads(history) if isinstance(history, str) else list(history))


def read_checkpoint(path: str | os.PathLike, tag: str) -> dict | None:
    """The checkpoint dict if ``path`` (or ``path``/checkpoint.pt) is a stylemix checkpoint whose
    format is ``tag``; None when there is none, it is another kind of file, or it cannot be read
    safely (weights-only loading: nothing in it runs). Raises ModelLoadError for a version this
    stylemix does not know."""
    from ..formats import TORCH_SAVE, detect_format
    from ..io import read_torch_file
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    try:
        if not path.is_file() or detect_format(path) != TORCH_SAVE:
            return None
        ckpt = read_torch_file(path)
    except ModelLoadError:
        return None
    if ckpt.get("format") != tag:
        return None
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ModelLoadError(f"{path}: {tag} checkpoint version {ckpt.get('version')!r} is not "
                             f"{CHECKPOINT_VERSION}")
    return ckpt
