"""Visitors' renders that arrive together, drawn together.

A server holds one pair on one device and many visitors move its sliders at once.  Each
request is one seed, one ψ and one blend; rendered one by one, each waits for the renders
queued before it.  :class:`RenderQueue` lets the requests that arrive while a render is running
wait together and then draws all of them in one batched pass
(:class:`~stylemix.batch_blend.BlendBatch`: sample i with blend i's weights), so on a GPU, where
a small render is bound by kernel launches rather than arithmetic, N visitors cost about one
render.  A lone request takes the pair's engine (only the changed slices recomposed), the
fastest path for one image.  Every request gets exactly the picture of its own controls: the
same as ``blend(G_base, G_transfer, spec)`` rendered alone, to float rounding.

The queue is also the server's one limit on main renders: one pass per pair at a time, whichever
path (Gradio's event or the page's direct route) asked.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch

from .batch_blend import BlendBatch
from .blend import BlendSpec
from .render import class_vector, render_seeds, seed_to_z, to_uint8

# Stacked synthesis weights per pass at most: a pass holds one copy of the synthesis network
# per request, so a 1024 px config-f pair (~120 MB a copy) batches 4, the 128 px default 16.
BATCH_WEIGHT_BYTES = 512 * 2 ** 20
MAX_BATCH = 16


def default_max_batch(device) -> int:
    """How many requests one pass takes by default: MAX_BATCH on a GPU; 1 (each alone) on a
    CPU, where a batched pass does the same arithmetic as the renders one by one and, measured
    with 16 visitors on the default pair, served 0.77x as many renders with twice the memory
    (bench/serving.py, bench/RESULTS.md)."""
    return 1 if torch.device(device).type == "cpu" else MAX_BATCH


@dataclass(frozen=True)
class RenderRequest:
    """One visitor's picture: ``seed`` through the blend ``spec`` at truncation ``psi``
    (``class_idx`` for a conditional pair)."""

    spec: BlendSpec
    seed: int
    psi: float
    class_idx: int | None = None


@dataclass(frozen=True)
class Rendered:
    """A request's picture (HWC uint8, as the model draws it), how long its pass took (ms),
    and how many requests shared the pass."""

    image: np.ndarray
    render_ms: float
    batch: int


class _Lane:
    """The requests waiting for one pair, and whether a pass is running for it."""

    def __init__(self):
        self.waiting: deque[tuple[RenderRequest, Future]] = deque()
        self.busy = False


class RenderQueue:
    """Main renders of every visitor, one pass per pair at a time, batched (up to
    ``max_batch``) when they queue up; ``max_batch=1`` renders each alone, in arrival order."""

    def __init__(self, max_batch: int = MAX_BATCH):
        self.max_batch = int(max_batch)
        self._lanes: dict[int, _Lane] = {}
        self._batches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pair → BlendBatch
        self._cond = threading.Condition()

    def render(self, pair, request: RenderRequest) -> Rendered:
        """``request`` drawn with ``pair`` (a loaded pair: ``G_base``, ``G_transfer``,
        ``engine``).  Blocks until its pass is done; raises what rendering it raises (a bad
        class, a spec the pair cannot take) for that request alone."""
        future: Future = Future()
        with self._cond:
            lane = self._lanes.setdefault(id(pair), _Lane())
            lane.waiting.append((request, future))
            while not future.done():
                if lane.busy:
                    self._cond.wait()
                    continue
                lane.busy = True
                batch = [lane.waiting.popleft() for _ in range(min(self._limit(pair), len(lane.waiting)))]
                self._cond.release()
                try:
                    self._draw(pair, batch)
                finally:
                    self._cond.acquire()
                    lane.busy = False
                    if not lane.waiting:
                        self._lanes.pop(id(pair), None)
                    self._cond.notify_all()
        return future.result()

    def _limit(self, pair) -> int:
        if self.max_batch == 1:
            return 1
        copy_bytes = sum(p.numel() * p.element_size() for p in pair.G_base.synthesis.parameters())
        return max(1, min(self.max_batch, BATCH_WEIGHT_BYTES // max(1, copy_bytes)))

    def _draw(self, pair, batch: list) -> None:
        start = time.perf_counter()
        try:
            images = self._images(pair, [request for request, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            # one bad request must not fail the others: each alone, so each gets its own answer
            for item in batch:
                self._draw(pair, [item])
            return
        ms = (time.perf_counter() - start) * 1e3
        for (_, future), image in zip(batch, images):
            future.set_result(Rendered(image, ms, len(batch)))

    def _images(self, pair, requests: list[RenderRequest]) -> np.ndarray:
        if len(requests) == 1:
            request = requests[0]
            with pair.engine.session(request.spec) as G:
                return to_uint8(render_seeds(G, [int(request.seed)], psi=float(request.psi),
                                             class_idx=request.class_idx))
        G = pair.G_base
        z = torch.cat([seed_to_z(int(r.seed), G.z_dim) for r in requests])
        c = None
        if G.c_dim:
            c = torch.cat([class_vector(G, r.class_idx, 1) for r in requests])
        return to_uint8(self._batch_of(pair).render([r.spec for r in requests], z,
                                                    psi=[float(r.psi) for r in requests], c=c))

    def _batch_of(self, pair) -> BlendBatch:
        """The pair's BlendBatch, made once (it holds the pair's blend plan) and dropped with
        the pair."""
        with self._cond:
            batch = self._batches.get(pair)
            if batch is None:
                batch = self._batches[pair] = BlendBatch(pair.G_base, pair.G_transfer)
            return batch
