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


def test_renders_follow_recompositions_and_rederive_only_what_changed(monkeypatch):
    """Layers keep what they derive from a weight between renders; a recomposition rewrites
    one α group, so only that group's layers derive again, and every render is the blend's.
    (b8's upsampling conv and b16's convs take the branch that also keeps a transposed weight.)"""
    from stylemix.networks import ops
    A = random_generator(channel_base=1024, channel_max=64)
    B = random_generator(seed=1, channel_base=1024, channel_max=64)
    engine, z = BlendEngine(A, B), torch.randn(1, 16)
    derived = []
    energy = ops.weight_energy
    monkeypatch.setattr(ops, "weight_energy", lambda w: derived.append(w.shape) or energy(w))
    specs = [BlendSpec.swap(16), BlendSpec.per_resolution({4: 1, 8: 1, 16: 0.5}),
             BlendSpec.per_resolution({4: 1, 8: 0.2, 16: 0.5}), BlendSpec.swap(16)]
    alphas = [spec.alphas(engine.resolutions) for spec in specs]
    for i, spec in enumerate(specs):
        derived.clear()
        with engine.session(spec) as G:
            live = render(G, z, 0.7)
        if i:
            changed = [r for r in engine.resolutions if alphas[i].get(r, 0) != alphas[i - 1].get(r, 0)]
            assert len(derived) == sum(1 if r == 4 else 2 for r in changed), (spec, changed)  # its convs
        assert torch.allclose(live, render(stylemix.blend(A, B, spec), z, 0.7), atol=1e-5), spec


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
    with pytest.raises(stylemix.IncompatibleModelsError, match="transfer model was not fine-tuned from this base"):
        BlendEngine(random_generator(0), random_generator(1, img_resolution=64))


@pytest.mark.slow  # about 100 s of compiling on two CPU cores; still part of the default run
def test_compiled_rendering_follows_the_sliders(nv_pair):
    """The opt-in torch.compile path renders what blend() renders, after α changes (a graph
    that had baked in the weights would fail), and falls back to eager if it cannot compile."""
    import warnings
    A, B = nv_pair
    engine = BlendEngine(A, B)
    engine.compile()
    z = torch.randn(1, A.z_dim, generator=torch.Generator().manual_seed(3))
    for spec in (BlendSpec.swap(16), BlendSpec.per_resolution({8: 0.3, 32: 1.0})):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with engine.session(spec) as G, torch.no_grad():
                got = G.synthesis(G.mapping(z, truncation_psi=0.7))
        if not engine.compiled:  # no working compiler here: the warning must say so
            assert any("torch.compile failed" in str(w.message) for w in caught)
        M = stylemix.blend(A, B, spec)
        with torch.no_grad():
            want = M.synthesis(M.mapping(z, truncation_psi=0.7))
        assert (got - want).abs().max() < 1e-4


def test_compile_failure_falls_back_to_eager(nv_pair, monkeypatch):
    A, B = nv_pair
    engine = BlendEngine(A, B)

    def broken(fn, **kwargs):
        def run(*a, **k):
            raise RuntimeError("no compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    engine.compile()
    z = torch.randn(1, A.z_dim)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        with engine.session(BlendSpec.swap(16)) as G, torch.no_grad():
            img = G.synthesis(G.mapping(z))
    assert not engine.compiled and torch.isfinite(img).all()


def test_engine_swaps_unequal_mapping_networks_whole():
    """A pair whose mapping networks differ (8 and 2 layers; or unconditional and conditional):
    the engine serves either side's mapping network, switching back and forth, and refuses a mix."""
    from conftest import FIXTURES
    field = FIXTURES / "field"
    A = stylemix.load_generator(field / "map8_base.pkl")
    T = stylemix.load_generator(field / "map2_transfer.pkl")
    engine = BlendEngine(A, T)
    z = torch.randn(2, 64, generator=torch.Generator().manual_seed(1))
    for spec in (BlendSpec.swap(8, mapping="transfer"), BlendSpec.swap(16), BlendSpec.linear(1, mapping="transfer")):
        with engine.session(spec) as G:
            assert G.mapping.num_layers == G.config.mapping_layers == (2 if spec.mapping else 8)
            assert torch.equal(render(G, z, 0.7), render(stylemix.blend(A, T, spec), z, 0.7))
    assert A.config.mapping_layers == 8 and T.config.mapping_layers == 2  # parents untouched
    with pytest.raises(stylemix.BlendSpecError, match=r"differ \(8 and 2 layers\).*from base or from transfer"):
        engine.set_alphas({8: 1.0}, mapping=0.5)

    U, C = random_generator(0), random_generator(1, c_dim=4)
    engine = BlendEngine(U, C)
    c = torch.eye(4)[[1]]
    with engine.session(BlendSpec.swap(8, mapping="transfer")) as G:
        assert G.c_dim == 4 and torch.equal(G.mapping(z[:1, :16], c), C.mapping(z[:1, :16], c))
    with engine.session(BlendSpec.swap(8)) as G:
        assert G.c_dim == 0 and G.config.c_dim == 0
