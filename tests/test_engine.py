"""The live engine gives exactly what blend() gives, for any sequence of α and any thread."""

import threading

import pytest
import torch

import stylemix
from stylemix import BlendSpec
from stylemix.engine import BlendEngine
from conftest import random_generator, render

SPECS = [BlendSpec.swap(16), BlendSpec.swap(8, low="base"), BlendSpec.linear(0.5),
         BlendSpec.smooth(16, 0.5), BlendSpec.per_resolution({4: 1, 32: 0.3}),
         BlendSpec.swap(16, mapping="transfer"), BlendSpec.linear(0.2, mapping="blend")]


def _same_state(G, H):
    a, b = G.state_dict(), H.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_engine_equals_blend_for_every_spec_in_any_order(nv_pair):
    engine = BlendEngine(*nv_pair)
    assert _same_state(engine.generator, nv_pair[0])  # starts at α = 0: the base model
    for spec in SPECS + SPECS[::-1]:
        engine.set_spec(spec)
        assert _same_state(engine.generator, stylemix.blend(*nv_pair, spec)), spec


def test_engine_reproduces_fixture_renders(nv_pair, renders):
    engine = BlendEngine(*nv_pair)
    z = torch.from_numpy(renders["z"])
    for label, spec in [("swap16_lowT", BlendSpec.swap(16)), ("linear0.5", BlendSpec.linear(0.5)),
                        ("transfer", BlendSpec.linear(1.0, mapping="transfer")),
                        ("base", BlendSpec.linear(0.0))]:
        with engine.session(spec) as G:
            img = render(G, z, 0.7)
        assert (img - torch.from_numpy(renders[f"{label}_psi0.7_img"])).abs().max() <= 1e-4


def test_parameters_are_views_not_copies(nv_pair):
    engine = BlendEngine(*nv_pair)
    weight = engine.generator.synthesis.b8.conv1.weight
    before = weight.clone()
    engine.set_alphas({8: 1.0})
    assert weight is engine.generator.synthesis.b8.conv1.weight  # same tensor object, new values
    assert torch.equal(weight, nv_pair[1].synthesis.b8.conv1.weight)
    assert not torch.equal(weight, before)
    assert torch.equal(engine.generator.synthesis.b16.conv1.weight, nv_pair[0].synthesis.b16.conv1.weight)


def test_parents_are_untouched(nv_pair):
    before = {k: v.clone() for k, v in nv_pair[0].state_dict().items()}
    engine = BlendEngine(*nv_pair)
    engine.set_spec(BlendSpec.linear(0.7, mapping="transfer"))
    assert all(torch.equal(before[k], v) for k, v in nv_pair[0].state_dict().items())


def test_concurrent_sessions_never_see_each_others_alpha(nv_pair):
    engine = BlendEngine(*nv_pair)
    z = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    specs = [BlendSpec.swap(r, low=low) for r in (4, 8, 16, 32) for low in ("base", "transfer")]
    expected = [render(stylemix.blend(*nv_pair, s), z) for s in specs]
    errors = []

    def worker(i):
        for _ in range(3):
            k = (i + _) % len(specs)
            with engine.session(specs[k]) as G:
                img = render(G, z)
            if not torch.equal(img, expected[k]):
                errors.append(specs[k])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_incompatible_pair_is_refused():
    with pytest.raises(stylemix.IncompatibleModelsError):
        BlendEngine(random_generator(0), random_generator(1, img_resolution=64))
