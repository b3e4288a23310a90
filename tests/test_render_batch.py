"""Visitors' renders that arrive together are drawn in one pass, each the picture of its own
controls."""

import threading

import numpy as np
import pytest

import stylemix
from stylemix import BlendSpec
from stylemix.render import render_seeds, to_uint8
from stylemix.render_batch import RenderQueue, RenderRequest
from stylemix.toonify import Toonifier

REQUESTS = [RenderRequest(BlendSpec.swap(8), 3, 0.7), RenderRequest(BlendSpec.linear(0.3), 4, 0.5),
            RenderRequest(BlendSpec.swap(16, low="base"), 5, 1.0),
            RenderRequest(BlendSpec.swap(16).with_channels(16, [1, 4], 0.0), 6, 0.7)]


def alone(nv_pair, request):
    return to_uint8(render_seeds(stylemix.blend(*nv_pair, request.spec), [request.seed], psi=request.psi))[0]


def test_requests_waiting_together_share_one_pass_and_each_gets_its_own_picture(nv_pair):
    pair = Toonifier(*nv_pair)
    queue = RenderQueue()
    started, release = threading.Event(), threading.Event()
    real = pair.engine.session

    def slow_session(spec):  # the first request holds its pass until the others are waiting
        started.set()
        release.wait(10)
        return real(spec)

    pair.engine.session = slow_session
    results = {}

    def ask(i):
        results[i] = queue.render(pair, REQUESTS[i])

    first = threading.Thread(target=ask, args=(0,))
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=ask, args=(i,)) for i in range(1, len(REQUESTS))]
    for t in others:
        t.start()
    while sum(len(lane.waiting) for lane in queue._lanes.values()) < len(others):
        threading.Event().wait(0.01)
    release.set()
    for t in [first, *others]:
        t.join(30)
    assert results[0].batch == 1                                # alone, through the engine
    assert [results[i].batch for i in range(1, 4)] == [3, 3, 3]  # the rest in one pass
    for i, request in enumerate(REQUESTS):
        difference = np.abs(results[i].image.astype(int) - alone(nv_pair, request).astype(int))
        assert difference.max() <= 1, request.spec.describe()       # the same picture, to rounding


def test_one_bad_request_fails_alone_and_unbatched_queues_draw_one_at_a_time(nv_pair):
    pair = Toonifier(*nv_pair)
    queue = RenderQueue()
    good = REQUESTS[1]
    bad = RenderRequest(BlendSpec.swap(16).with_channels(16, [9999], 0.0), 1, 0.7)  # no such channel
    with pytest.raises(stylemix.BlendSpecError, match="channel 9999"):
        queue.render(pair, bad)
    # in one pass with a good request, the bad one fails and the good one is still drawn
    from concurrent.futures import Future
    futures = [Future(), Future()]
    queue._draw(pair, [(good, futures[0]), (bad, futures[1])])
    assert np.abs(futures[0].result().image.astype(int) - alone(nv_pair, good).astype(int)).max() <= 1
    with pytest.raises(stylemix.BlendSpecError, match="channel 9999"):
        futures[1].result()
    assert RenderQueue(max_batch=1)._limit(pair) == 1
    assert RenderQueue(max_batch=2)._limit(pair) == 2


def test_batching_is_the_default_on_a_gpu_only():
    """Measured on this CPU: a batched pass served fewer renders (bench/RESULTS.md)."""
    from stylemix.render_batch import MAX_BATCH, default_max_batch
    assert default_max_batch("cpu") == 1
    assert default_max_batch("cuda") == default_max_batch("cuda:1") == MAX_BATCH
