"""One blend kernel: blend(), blend_many(), the live engine and BlendBatch give the same weights
for the same spec — channel α and mapping choices included — because they share a BlendPlan."""

import numpy as np
import pytest
import torch

import stylemix
from stylemix import BlendSpec
from stylemix.batch_blend import BlendBatch
from stylemix.blend_plan import MAPPING, BlendPlan
from stylemix.engine import BlendEngine
from conftest import FIXTURES, random_generator, render

SPECS = [
    BlendSpec.swap(16), BlendSpec.swap(8, low="base"), BlendSpec.linear(0.5), BlendSpec.linear(0.5 + 1e-7),
    BlendSpec.smooth(16, 0.5), BlendSpec.per_resolution({4: 1, 32: 0.3}),
    BlendSpec.swap(16, mapping="transfer"), BlendSpec.linear(0.2, mapping="blend"),
    BlendSpec.swap(16).with_channels(16, [1, 4], 0.0),
    BlendSpec.linear(0.3).with_channels(8, [0], 1.0).with_channels(32, [2, 3], 0.7),
    BlendSpec.per_resolution({8: 0.6}, mapping=1.0).with_channels(8, [5], 0.2),
]


def _state(G):
    return G.state_dict()


def _assert_same(got: dict, want: dict, what: str):
    assert got.keys() == want.keys(), what
    for name in want:
        assert torch.equal(got[name], want[name]), f"{what}: {name}"


@pytest.fixture(scope="module")
def pair():
    return random_generator(0), random_generator(1)


def test_four_users_agree_on_every_spec(pair):
    A, T = pair
    engine, batch = BlendEngine(A, T), BlendBatch(A, T)
    stacked = batch.weights(SPECS)
    for i, spec in enumerate(SPECS):
        want = _state(stylemix.blend(A, T, spec))
        engine.set_spec(spec)
        _assert_same(_state(engine.generator), want, f"engine {spec.describe()}")
        synthesis = {k[len("synthesis."):]: v for k, v in want.items() if k.startswith("synthesis.")}
        _assert_same({k: v[i] for k, v in stacked.items()}, synthesis, f"batch {spec.describe()}")
        if not spec.channel_table and spec.mapping in (0.0, 1.0):  # what blend_many can express
            many = stylemix.blend_many(A, [T], [spec], mapping=0 if spec.mapping else None)
            _assert_same(_state(many), want, f"blend_many {spec.describe()}")


def test_batch_renders_what_blend_renders(pair):
    A, T = pair
    z = torch.randn(len(SPECS), A.z_dim, generator=torch.Generator().manual_seed(5))
    images = BlendBatch(A, T).render(SPECS, z, psi=0.7)
    for i, spec in enumerate(SPECS):
        assert (images[i] - render(stylemix.blend(A, T, spec), z[i:i + 1], 0.7)[0]).abs().max() < 1e-4


def test_four_users_reproduce_the_fixture_references(nv_pair, renders):
    z = torch.from_numpy(renders["z"])
    cases = {"swap16_lowT": BlendSpec.swap(16), "swap8_lowT": BlendSpec.swap(8),
             "swap16_lowB": BlendSpec.swap(16, low="base"), "linear0.5": BlendSpec.linear(0.5)}
    engine, batch = BlendEngine(*nv_pair), BlendBatch(*nv_pair)
    images = batch.render(list(cases.values()), z[:1].expand(len(cases), -1), psi=0.7)
    for i, (label, spec) in enumerate(cases.items()):
        want = torch.from_numpy(renders[f"{label}_psi0.7_img"])
        with engine.session(spec) as G:
            got = {"engine": render(G, z, 0.7)}
        got["blend"] = render(stylemix.blend(*nv_pair, spec), z, 0.7)
        got["blend_many"] = render(stylemix.blend_many(nv_pair[0], [nv_pair[1]], [spec]), z, 0.7)
        for who, img in got.items():
            assert (img - want).abs().max() <= 1e-4, f"{who} {label}"
        assert (images[i] - want[0]).abs().max() <= 1e-4, f"batch {label}"


def test_plan_layout_one_slice_per_group(pair):
    """Each α group is one contiguous stretch (interpolated tensors, then picked ones), the
    stretches tile the buffer, and every tensor is in exactly one."""
    A, T = pair
    plan = BlendPlan(A, [T])
    covered = []
    for key, (interp, picked) in plan.spans.items():
        assert interp.stop == picked.start
        covered.append((interp.start, picked.stop))
        for e in plan.entries:
            inside = interp.start <= e.offset < picked.stop
            assert inside == (e.key == key)
            if inside:
                assert e.picked == (e.offset >= picked.start)
                assert e.picked == ("noise_const" in e.name or "resample_filter" in e.name)
    covered.sort()
    assert covered[0][0] == 0 and covered[-1][1] == plan.numel
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))
    assert set(plan.spans) == set(plan.groups) | {MAPPING}
    assert sorted(e.name for e in plan.entries) == sorted(A.state_dict())


def test_plan_checks_weights_once_for_every_user(pair):
    A, T = pair
    engine, batch = BlendEngine(A, T), BlendBatch(A, T)
    bad = BlendSpec.swap(16).with_channels(16, [99], 0.0)
    for use in (lambda: stylemix.blend(A, T, bad), lambda: engine.set_spec(bad), lambda: batch.weights([bad])):
        with pytest.raises(stylemix.BlendSpecError,
                           match=r"channel 99 does not exist: synthesis\.b16\.\S+ has 16 channels \(0-15\)"):
            use()
    with pytest.raises(stylemix.BlendSpecError, match="α given for 128 px, but the models' α groups are 4, 8, 16, 32"):
        engine.set_alphas({128: 1.0})
    with pytest.raises(stylemix.BlendSpecError, match="channel α given for 64 px"):
        engine.set_alphas({}, channels={64: {0: 1.0}})


FIELD = FIXTURES / "field"


def test_four_users_on_a_pair_whose_mapping_depths_differ():
    """map8_base + map2_transfer: the mapping network comes whole from one side, in every user."""
    A = stylemix.load_generator(FIELD / "map8_base.pkl")
    T = stylemix.load_generator(FIELD / "map2_transfer.pkl")
    refs = dict(np.load(FIELD / "map8_map2_renders.npz"))
    z = torch.from_numpy(refs["z"])
    cases = {"swap8_lowT": BlendSpec.swap(8), "swap16_lowT": BlendSpec.swap(16),
             "swap8_lowT_mapT": BlendSpec.swap(8, mapping="transfer")}
    engine, batch = BlendEngine(A, T), BlendBatch(A, T)
    images = batch.render(list(cases.values()), z[2:3], psi=0.7)
    for i, (label, spec) in enumerate(cases.items()):
        want = torch.from_numpy(refs[f"{label}_psi0.7_img"])
        with engine.session(spec) as G:
            assert G.config.mapping_layers == (2 if spec.mapping else 8)
            got = {"engine": render(G, z, 0.7)}
        got["blend"] = render(stylemix.blend(A, T, spec), z, 0.7)
        got["blend_many"] = render(stylemix.blend_many(A, [T], [spec], mapping=0 if spec.mapping else None), z, 0.7)
        for who, img in got.items():
            assert (img - want).abs().max() <= 1e-4, f"{who} {label}"
        assert (images[i] - want[2]).abs().max() <= 1e-4, f"batch {label}"
    for use in (lambda: engine.set_spec(BlendSpec.swap(8, mapping="blend")),
                lambda: batch.render([BlendSpec.swap(8, mapping=0.5)], z[:1])):
        with pytest.raises(stylemix.BlendSpecError, match=r"differ \(8 and 2 layers\)"):
            use()


def test_engine_refuses_alphas_that_are_not_finite(pair):
    engine = BlendEngine(*pair)
    for bad in ({8: float("nan")}, {4: float("inf")}):
        with pytest.raises(stylemix.BlendSpecError, match="every α must be a finite number"):
            engine.set_alphas(bad)
    with pytest.raises(stylemix.BlendSpecError, match="every α must be a finite number"):
        engine.set_alphas({}, channels={8: {0: float("nan")}})
    assert _state(engine.generator).keys() == _state(pair[0]).keys()
    _assert_same(_state(engine.generator), _state(pair[0]), "engine left at base")
