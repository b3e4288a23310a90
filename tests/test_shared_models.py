"""The pair's networks are shared by every visitor: nothing per-visitor may be written into them.

One session projects a face (its own noise maps, its own latent) while another exports the same
pair's blend again and again; every exported file must be the blend of the published weights.
"""

from __future__ import annotations

import threading

import torch
from PIL import Image

import stylemix
from stylemix.blend import BlendSpec, blend
from stylemix.project import ProjectionConfig, noise_buffers
from stylemix.toonify import Toonifier
from stylemix.ui.exports import export_blend


def _state(G) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in G.state_dict().items()}


def test_projection_in_one_session_never_reaches_another_sessions_export(nv_pair, tmp_path):
    G_base, G_transfer = nv_pair
    pair = Toonifier(G_base, G_transfer)
    spec = BlendSpec.swap(16)
    expected = _state(blend(G_base, G_transfer, spec))
    published = _state(G_base)
    face = Image.fromarray(torch.randint(0, 256, (64, 64, 3), dtype=torch.uint8).numpy())

    done = threading.Event()
    failures: list[BaseException] = []

    def visitor_projecting():
        try:
            pair.project(face, ProjectionConfig(steps=40, w_plus_steps=20, seed=3))
        except BaseException as exc:  # noqa: BLE001  (reported by the test below)
            failures.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=visitor_projecting)
    thread.start()
    exports = 0
    try:
        while not done.is_set() or exports < 3:
            path = export_blend(G_base, G_transfer, spec, ".safetensors")
            got = stylemix.load_generator(path).state_dict()
            for name, value in expected.items():
                assert torch.equal(got[name].float(), value.float()), f"{name} differs in export {exports}"
            exports += 1
    finally:
        thread.join()
    assert not failures, failures
    assert exports >= 3
    # and the shared base itself is as published, noise maps included
    for name, value in _state(G_base).items():
        assert torch.equal(value, published[name]), name
    assert noise_buffers(G_base)  # the check above covered real noise maps
