"""A transfer file can carry the toonify blend chosen for its pair (toonify_alphas metadata)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import stylemix
from stylemix.errors import ModelLoadError
from stylemix.formats import native
from stylemix.toonify import SOFT_EDGE, default_toonify_spec, recommended_toonify_alphas, toonify_r_swap
from stylemix.ui.controls import ALL_RESOLUTIONS, opening_alphas
from conftest import random_generator

ROOT = Path(__file__).resolve().parents[1]


def test_toonify_alphas_survive_a_save_and_load(tmp_path):
    G = random_generator(0)
    G.toonify_alphas = {4: 1.0, 8: 1.0, 16: 0.5}
    native.save(G, tmp_path / "t.safetensors")
    assert stylemix.load_generator(tmp_path / "t.safetensors").toonify_alphas == {4: 1.0, 8: 1.0, 16: 0.5}
    plain = random_generator(1)
    native.save(plain, tmp_path / "plain.safetensors")
    assert stylemix.load_generator(tmp_path / "plain.safetensors").toonify_alphas is None


def test_a_malformed_toonify_table_is_a_one_line_load_error(tmp_path):
    native.save(random_generator(0), tmp_path / "t.safetensors")
    with safe_open(str(tmp_path / "t.safetensors"), framework="pt") as f:
        meta = f.metadata()
    meta["toonify_alphas"] = json.dumps({"sixteen": 1})
    save_file(load_file(str(tmp_path / "t.safetensors")), str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(ModelLoadError, match="bad.safetensors has a malformed stylemix config") as info:
        stylemix.load_generator(tmp_path / "bad.safetensors")
    assert "\n" not in str(info.value)


def test_the_default_blend_is_the_transfers_own_when_it_has_one():
    base, transfer = random_generator(0), random_generator(1)  # 32 px: blocks 4, 8, 16, 32
    generic = default_toonify_spec(base, transfer).alphas(base.block_resolutions)
    r_swap = toonify_r_swap(base)
    assert generic[r_swap] == SOFT_EDGE[0]
    transfer.toonify_alphas = {4: 1.0, 8: 0.6}
    own = default_toonify_spec(base, transfer).alphas(base.block_resolutions)
    assert own == {4: 1.0, 8: 0.6, 16: 0.0, 32: 0.0}
    assert opening_alphas(base, transfer) == [own.get(r, 0.0) for r in ALL_RESOLUTIONS]
    assert opening_alphas(base) == [round(generic.get(r, 0.0), 3) for r in ALL_RESOLUTIONS]
    transfer.toonify_alphas = {4: 1.0, 64: 1.0}  # made for a bigger pair: ignored, not half applied
    assert recommended_toonify_alphas(base, transfer) is None
    assert default_toonify_spec(base, transfer).alphas(base.block_resolutions) == generic


def test_pack_default_pair_stores_the_blend_and_refuses_a_foreign_resolution(tmp_path):
    native.save(random_generator(0), tmp_path / "base.safetensors")
    native.save(random_generator(1), tmp_path / "transfer.safetensors")
    tool = [sys.executable, str(ROOT / "tools" / "pack_default_pair.py"),
            str(tmp_path / "base.safetensors"), str(tmp_path / "transfer.safetensors")]
    done = subprocess.run(tool + ["-o", str(tmp_path / "out"), "--toonify-alphas", "4:1,8:1,16:1"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    packed = stylemix.load_generator(tmp_path / "out" / "transfer.safetensors")
    assert packed.toonify_alphas == {4: 1.0, 8: 1.0, 16: 1.0}
    assert stylemix.load_generator(tmp_path / "out" / "base.safetensors").toonify_alphas is None
    refused = subprocess.run(tool + ["-o", str(tmp_path / "out2"), "--toonify-alphas", "4:1,256:1"],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "no block for (its blocks: 4, 8, 16, 32 px)" in refused.stderr
    assert not (tmp_path / "out2").exists()


def test_a_blend_or_a_fine_tune_of_a_transfer_does_not_inherit_its_toonify_blend(tmp_path):
    """The table was chosen for one file in its pair: a model made from it (a blend, the app's
    engine, a training snapshot) is another model and says nothing until its maker chooses."""
    from stylemix.engine import BlendEngine
    from stylemix.train.gan import write_generator
    transfer, other = random_generator(0), random_generator(1)
    transfer.toonify_alphas = {4: 1.0, 8: 1.0}
    assert stylemix.blend(transfer, other, stylemix.BlendSpec.swap(16)).toonify_alphas is None
    assert stylemix.blend_many(transfer, [other], [stylemix.BlendSpec.swap(16)]).toonify_alphas is None
    assert BlendEngine(transfer, other).generator.toonify_alphas is None
    write_generator(transfer, tmp_path)
    assert stylemix.load_generator(tmp_path / "generator.safetensors").toonify_alphas is None
    assert transfer.toonify_alphas is None  # the snapshot writer clears it on the model it saves


def test_a_model_made_from_a_file_forgets_what_that_file_said_about_itself():
    """Trained, blended or recomposed models are new files: their start file's recipe and
    recommended toonify blend are dropped (its source only where it stays the export template)."""
    G = random_generator(0)
    G.blend_info, G.toonify_alphas = {"label": "swap16"}, {4: 1.0, 8: 1.0}
    G.source = "a file"
    assert G.forget_file_metadata(keep_source=True) is G
    assert (G.blend_info, G.toonify_alphas, G.source) == (None, None, "a file")
    G.forget_file_metadata()
    assert G.source is None
