"""Training on several devices or machines with ``torch.distributed``, launched by ``torchrun``.

One process per device (rank); every rank holds the same networks and optimisers. A step's
global batch (``--batch``) is cut into chunks of ``batch_gpu`` samples; chunk k of step s is
drawn from a generator seeded by (seed, s, phase, k), so which samples a chunk holds depends
on neither the number of ranks nor on where a run was resumed. Each rank runs its share of the
chunks, gradients are summed over the chunks and all-reduced over the ranks, then divided by the
number of chunks: the mean-loss gradient of the whole global batch, the same whatever the number
of ranks (a one-process run with the same ``batch_gpu`` runs every chunk itself). EMA, metrics
and snapshots happen on rank 0. NCCL on GPUs, gloo on CPUs. Without ``torchrun`` (no
``WORLD_SIZE`` in the environment) everything is one process and nothing here talks to anyone.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..errors import StylemixError
from ..io import first_line


class RankLostError(StylemixError):
    """Another rank of the job stopped answering (it died, or its machine went away)."""


def _collective(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except (RuntimeError, dist.DistError) as exc:
        raise RankLostError(f"rank {dist.get_rank()} lost the other ranks ({first_line(exc)[:100]}): "
                            "the last snapshot is intact; run the same command again to resume") from None


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: ``rank`` of ``world`` processes (0 of 1 alone)."""
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def chunks(self, total: int) -> range:
        """The global chunk indices this rank runs: rank, rank + world, …"""
        return range(self.rank, total, self.world)

    def sum_gradients(self, module: torch.nn.Module) -> None:
        """All-reduce (sum) the gradients of ``module`` over the ranks, as one flat tensor.
        A parameter without a gradient on every rank stays without one (frozen parameters)."""
        if not self.active:
            return
        params = [p for p in module.parameters() if p.grad is not None]
        if not params:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        _collective(dist.all_reduce, flat)
        for p, g in zip(params, flat.split([p.numel() for p in params])):
            p.grad.copy_(g.view_as(p.grad))

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of ``tensor`` over the ranks (itself alone)."""
        if not self.active:
            return tensor
        out = tensor.detach().clone()
        _collective(dist.all_reduce, out)
        return out / self.world

    def broadcast(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers everywhere (networks start identical)."""
        if not self.active:
            return
        for tensor in [*module.parameters(), *module.buffers()]:
            _collective(dist.broadcast, tensor.data, src=0)

    def barrier(self) -> None:
        if self.active:
            _collective(dist.barrier)

    def finish(self) -> None:
        """End this rank's process once every rank is done (the job's last call under
        torchrun): a barrier, the process group destroyed, output flushed, then ``os._exit(0)``.
        Interpreter teardown is skipped on purpose: after a good run it now and then aborts a
        rank ("terminate called without an active exception", SIGABRT: a C++ thread still
        joinable at exit; seen about once in 20 two-rank runs, and once in a plain pytest
        process), and torchrun then reports the whole job failed."""
        if not self.active:
            return
        self.barrier()
        dist.destroy_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def chunk_generator(seed: int, step: int, phase: int, chunk: int) -> torch.Generator:
    """The generator of one chunk's samples (and the global torch seed for its noise)."""
    value = int(np.random.SeedSequence([seed, step, phase, chunk]).generate_state(1, np.uint64)[0] >> 1)
    torch.manual_seed(value)
    return torch.Generator().manual_seed(value)


def split_batch(batch: int, batch_gpu: int | None, ranks: Ranks) -> tuple[int, int]:
    """(chunk size, number of chunks) for a global ``batch``; raises a one-line error when the
    batch does not split evenly over the ranks."""
    size = batch_gpu or batch // ranks.world
    if size < 1 or batch % (size * ranks.world):
        raise StylemixError(f"--batch {batch} does not split into chunks of {size} over {ranks.world} "
                            f"rank(s): make it a multiple of {ranks.world} × the per-device batch")
    return size, batch // size


def init_from_env(device: str) -> tuple[Ranks, str]:
    """Join the process group ``torchrun`` describes in the environment (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR/PORT); returns (ranks, this rank's device). Alone: (Ranks(), device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks(), device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo",
                                timeout=datetime.timedelta(minutes=int(os.environ.get("STYLEMIX_DIST_TIMEOUT_MIN", "10"))))
    return Ranks(dist.get_rank(), dist.get_world_size()), device
