"""Channel-dependent α: single feature maps of a block take their own α (library, engine, CLI, app)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stylemix
from stylemix import BlendSpec, BlendSpecError
from stylemix.channels import block_channels, rank_channels
from stylemix.cli import main as cli
from stylemix.engine import BlendEngine
from stylemix.render import render_seeds
from conftest import NV_BASE, NV_TRANSFER


def test_listed_channels_take_their_own_alpha(nv_pair):
    base, transfer = nv_pair
    spec = BlendSpec.swap(16).with_channels(16, [2, 5], 0.0)
    B = stylemix.blend(base, transfer, spec)
    w = B.synthesis.b16.conv1.weight
    tw, bw = transfer.synthesis.b16.conv1.weight, base.synthesis.b16.conv1.weight
    assert torch.equal(w[2], bw[2]) and torch.equal(w[5], bw[5])       # the listed rows: base
    assert torch.equal(w[0], tw[0]) and torch.equal(w[6], tw[6])       # the rest: the block's α = 1
    assert torch.equal(B.synthesis.b16.conv1.affine.weight, transfer.synthesis.b16.conv1.affine.weight)
    assert torch.equal(B.synthesis.b32.conv1.weight, base.synthesis.b32.conv1.weight)
    const = stylemix.blend(base, transfer, BlendSpec.linear(0).with_channels(4, [1], 0.5)).synthesis.b4.const
    assert torch.allclose(const[1], base.synthesis.b4.const[1].lerp(transfer.synthesis.b4.const[1], 0.5))
    assert torch.equal(const[0], base.synthesis.b4.const[0])


def test_channel_spec_round_trips_and_names_itself():
    spec = BlendSpec.swap(16).with_channels(16, [5, 2], 0.0).with_channels(8, [1], 0.25)
    assert spec.channel_alphas() == {8: {1: 0.25}, 16: {2: 0.0, 5: 0.0}}
    assert BlendSpec.from_dict(spec.to_dict()) == spec
    assert spec.describe() == "swap16-lowT-ch8x1-ch16x2"
    again = spec.with_channels(16, [2], 1.0)  # a channel listed twice keeps the newest α
    assert again.channel_alphas()[16] == {2: 1.0, 5: 0.0}


def test_bad_channels_are_named(nv_pair):
    with pytest.raises(BlendSpecError, match="channel 999 does not exist"):
        stylemix.blend(*nv_pair, BlendSpec.swap(16).with_channels(16, [999], 0))
    with pytest.raises(BlendSpecError, match="128 px"):
        stylemix.blend(*nv_pair, BlendSpec.swap(16).with_channels(128, [0], 0))
    with pytest.raises(BlendSpecError, match="negative"):
        BlendSpec.swap(16).with_channels(16, [-1], 0)
    with pytest.raises(BlendSpecError, match="two-model"):
        stylemix.blend_many(nv_pair[0], [nv_pair[1]], [BlendSpec.swap(8).with_channels(8, [0], 0)])


def test_engine_matches_blend_with_channels_and_undoes_them(nv_pair):
    engine = BlendEngine(*nv_pair)
    with_channels = BlendSpec.smooth(16, 0.5).with_channels(16, [0, 3], 1.0).with_channels(64, [7], 0.0)
    for spec in (with_channels, BlendSpec.smooth(16, 0.5), with_channels):
        expected = render_seeds(stylemix.blend(*nv_pair, spec), [4, 5])
        with engine.session(spec) as G:
            got = render_seeds(G, [4, 5])
        assert (got - expected).abs().max() < 1e-4, spec.describe()


def test_ranking_puts_the_most_influential_channel_first(nv_pair):
    engine = BlendEngine(*nv_pair)
    spec = BlendSpec.swap(16)
    effects = rank_channels(engine, spec, 16, [0, 1], psi=0.7)
    assert len(effects) == block_channels(nv_pair[0], 16)
    assert [e.change for e in effects] == sorted((e.change for e in effects), reverse=True)
    z = torch.cat([stylemix.render.seed_to_z(s, 64) for s in (0, 1)])

    def change(channel):
        flipped = stylemix.blend(*nv_pair, spec.with_channels(16, [channel], 0.0))
        plain = stylemix.blend(*nv_pair, spec)
        return (flipped(z, truncation_psi=0.7) - plain(z, truncation_psi=0.7)).abs().mean().item()

    assert change(effects[0].channel) == pytest.approx(effects[0].change, rel=1e-3)
    assert change(effects[0].channel) > change(effects[-1].channel)
    boxed = rank_channels(engine, spec, 16, [0, 1], box=(0, 0, 0.5, 0.5))
    assert [e.channel for e in boxed] != [e.channel for e in effects]


def test_cli_channels_and_blend(tmp_path, capsys):
    assert cli(["channels", str(NV_BASE), str(NV_TRANSFER), "--res", "16", "--swap", "16",
                "--seeds", "0-1", "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    top = int(lines[1].split()[0])
    assert len(lines) == 4
    out = tmp_path / "b.safetensors"
    assert cli(["blend", str(NV_BASE), str(NV_TRANSFER), "--swap", "16", "--channels",
                f"16:{top}+1=0", "-o", str(out)]) == 0
    B = stylemix.load_generator(out)
    assert B.blend_info["spec"]["channel_table"] == sorted([[16, top, 0.0], [16, 1, 0.0]])
    assert cli(["blend", str(NV_BASE), str(NV_TRANSFER), "--swap", "16", "--channels", "16:x=0",
                "-o", str(out)]) == 1
    assert "--channels wants RES:C+C" in capsys.readouterr().err
