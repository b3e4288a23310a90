"""Loading every format safely, exporting to every format, and clear errors for bad files."""

import os
import pickle
import sys
import types

import pytest
import torch

import stylemix
from stylemix import BlendSpec
from stylemix.formats import detect_format
from stylemix.formats.safe_pickle import PersistentRecord, safe_load_pickle
from conftest import FIXTURES, NV_BASE, ROSINALITY, random_generator, render


def _max_diff(G, renders, label, psi):
    z = torch.from_numpy(renders["z"])
    return (render(G, z, psi) - torch.from_numpy(renders[f"{label}_psi{psi}_img"])).abs().max()


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_rosinality_checkpoint_reproduces_base_renders(renders, psi):
    G = stylemix.load_generator(ROSINALITY)
    assert G.source.format == "rosinality"
    assert _max_diff(G, renders, "base", psi) <= 1e-4


def test_detect_format():
    assert detect_format(NV_BASE) == "pickle"
    assert detect_format(ROSINALITY) == "torch_save"


def test_network_choice_g_vs_g_ema():
    G = stylemix.load_generator(NV_BASE, network="G")
    assert G.source.network == "G"
    with pytest.raises(ValueError, match="network must be"):
        stylemix.load_generator(NV_BASE, network="D")


@pytest.mark.parametrize("ext", ["safetensors", "pt", "pkl"])
def test_round_trip_every_format(tmp_path, nv_pair, renders, ext):
    B = stylemix.blend(*nv_pair, stylemix.BlendSpec.swap(16))
    out = tmp_path / f"blend.{ext}"
    stylemix.save(B, out, custom_channels=True)  # .pt: this network's channels are its own
    again = stylemix.load_generator(out)
    z = torch.from_numpy(renders["z"])
    assert torch.equal(render(again, z, 0.7), render(B, z, 0.7))
    assert _max_diff(again, renders, "swap16_lowT", 0.7) <= 1e-4
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temporary behind
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not a private temp


def test_random_configs_round_trip_native_and_rosinality(tmp_path):
    G = random_generator(conv_clamp=None, img_resolution=64, channel_base=512, channel_max=16)
    z = torch.randn(2, 16)
    for ext in ("safetensors", "pt"):
        stylemix.save(G, tmp_path / f"g.{ext}", custom_channels=True)
        assert torch.equal(render(stylemix.load_generator(tmp_path / f"g.{ext}"), z), render(G, z))
    R = random_generator(architecture="resnet", c_dim=2)
    stylemix.save(R, tmp_path / "r.safetensors")
    c = torch.eye(2)
    assert torch.equal(render(stylemix.load_generator(tmp_path / "r.safetensors"), z, c=c), render(R, z, c=c))


def test_native_float16_synthesis_halves_the_file_and_keeps_the_mapping(tmp_path):
    from safetensors import safe_open
    from stylemix.formats import native
    G = random_generator(conv_clamp=None, img_resolution=64, channel_base=2048, channel_max=64)
    native.save(G, tmp_path / "f32.safetensors")
    native.save(G, tmp_path / "f16.safetensors", synthesis_dtype=torch.float16)
    assert (tmp_path / "f16.safetensors").stat().st_size < 0.7 * (tmp_path / "f32.safetensors").stat().st_size
    with safe_open(str(tmp_path / "f16.safetensors"), framework="pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    weights = {name for name, _ in G.synthesis.named_parameters(prefix="synthesis")}
    assert {k for k, d in dtypes.items() if d == "F16"} == weights  # buffers, mapping: float32
    assert set(dtypes.values()) == {"F16", "F32"}
    H = stylemix.load_generator(tmp_path / "f16.safetensors")
    z = torch.randn(3, G.z_dim)
    assert torch.equal(H.mapping(z, None), G.mapping(z, None))
    assert all(p.dtype == torch.float32 for p in H.parameters())
    difference = (render(H, z) - render(G, z)).abs()
    assert 0 < difference.max() < 2e-2
    with pytest.raises(ValueError, match="synthesis_dtype must be"):
        native.save(G, tmp_path / "bf.safetensors", synthesis_dtype=torch.bfloat16)


def test_rosinality_export_has_rosinality_keys(tmp_path, nv_pair):
    """The fixture was saved from a rosinality Generator with its channel table edited to this
    network's: --custom-channels writes exactly that file."""
    stylemix.save(nv_pair[0], tmp_path / "g.pt", custom_channels=True)
    ckpt = torch.load(tmp_path / "g.pt", weights_only=True)
    original = torch.load(ROSINALITY, weights_only=True)
    assert set(ckpt["g_ema"]) == set(original["g_ema"]) | {
        k for k in ckpt["g_ema"] if k.endswith("kernel")}
    for k, v in original["g_ema"].items():
        assert torch.allclose(ckpt["g_ema"][k], v), k
    assert torch.allclose(ckpt["latent_avg"], original["latent_avg"])


def test_rosinality_checkpoint_without_latent_avg_estimates_it(tmp_path):
    ckpt = torch.load(ROSINALITY, weights_only=True)
    torch.save({"g_ema": ckpt["g_ema"]}, tmp_path / "no_avg.pt")
    G = stylemix.load_generator(tmp_path / "no_avg.pt")
    # The stored latent_avg is NVIDIA's running mean; a 10k-sample estimate is close to it.
    cos = torch.nn.functional.cosine_similarity(G.mapping.w_avg, ckpt["latent_avg"], dim=0)
    assert cos > 0.9


def test_rosinality_export_refuses_what_it_cannot_express(tmp_path):
    with pytest.raises(stylemix.ExportError, match="architecture 'resnet'"):
        stylemix.save(random_generator(architecture="resnet"), tmp_path / "x.pt")


def _stub_nvidia_modules():
    """Stand-ins for torch_utils.persistence / dnnlib, for reading OUR OWN export with plain pickle."""
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = lambda meta: ("persistent", meta)
    pkg = types.ModuleType("torch_utils")
    pkg.persistence = persistence
    return {"torch_utils": pkg, "torch_utils.persistence": persistence}


def test_nvidia_export_keeps_every_other_record(tmp_path, nv_pair):
    B = stylemix.blend(*nv_pair, stylemix.BlendSpec.swap(16))
    out = tmp_path / "blend.pkl"
    stylemix.save(B, out)
    original, exported = NV_BASE.read_bytes(), out.read_bytes()
    from stylemix.formats.nvidia_pkl import _recipe_opcodes
    recipe = _recipe_opcodes(B.blend_info)  # the blend recipe, added before STOP
    assert len(exported) == len(original) - 1 + len(recipe) and exported.endswith(recipe)
    assert stylemix.load_generator(out).blend_info == B.blend_info
    a, b = safe_load_pickle(original).root, safe_load_pickle(exported).root
    assert a["training_set_kwargs"] == b["training_set_kwargs"]
    for key in ("G", "D"):
        ta, tb = a[key].named_tensors(), b[key].named_tensors()
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    for key in ("G", "D", "G_ema"):
        assert a[key].meta["module_src"] == b[key].meta["module_src"]
        assert a[key].init_kwargs == b[key].init_kwargs
    blended = b["G_ema"].named_tensors()
    for name, value in B.state_dict().items():
        assert torch.equal(blended[name], value), name

    # A plain pickle load, as NVIDIA's legacy.py does (with stand-ins for NVIDIA's modules,
    # since this is our own trusted output), sees the standard structure and the blend.
    saved = {k: sys.modules.get(k) for k in _stub_nvidia_modules()}
    sys.modules.update(_stub_nvidia_modules())
    try:
        data = pickle.loads(exported)
    finally:
        for k, v in saved.items():
            sys.modules.pop(k) if v is None else sys.modules.__setitem__(k, v)
    assert set(data) == {"G", "D", "G_ema", "training_set_kwargs", "augment_pipe", "stylemix_blend"}
    kind, meta = data["G_ema"]
    assert kind == "persistent" and meta["class_name"] == "Generator"
    synth = meta["state"]["_modules"]["synthesis"][1]["state"]["_modules"]
    conv = synth["b4"][1]["state"]["_modules"]["conv1"][1]["state"]["_parameters"]["weight"]
    assert torch.equal(conv, B.synthesis.b4.conv1.weight)


def test_nvidia_export_needs_a_nvidia_template(tmp_path):
    G = stylemix.load_generator(ROSINALITY)
    with pytest.raises(stylemix.ExportError, match="needs an NVIDIA .pkl as its template"):
        stylemix.save(G, tmp_path / "x.pkl")
    assert not (tmp_path / "x.pkl").exists()


def test_save_needs_a_known_extension(tmp_path, nv_pair):
    with pytest.raises(stylemix.ExportError, match="use .pkl"):
        stylemix.save(nv_pair[0], tmp_path / "x.bin")


# -- hostile and broken files ------------------------------------------------------------------

class _System:
    """Pickles to os.system(<command>) — what a malicious model file does."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return os.system, (self.cmd,)


class _Eval:
    def __reduce__(self):
        return eval, ("__import__('os').system('touch CANARY')",)


class _Popen:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        import subprocess
        return subprocess.Popen, (self.cmd,)


class _Getattr:
    """getattr(x, name): the first step of the nested-reduce routes to dangerous callables."""

    def __reduce__(self):
        return getattr, ("text", "upper")


@pytest.mark.parametrize("payload,needle", [
    (lambda canary: {"G_ema": _System(f"touch {canary}")}, "'posix.system'"),
    (lambda canary: {"G_ema": _Eval()}, "'builtins.eval'"),
    (lambda canary: {"G_ema": _Popen(["touch", str(canary)])}, "'subprocess.Popen'"),
    (lambda canary: {"G_ema": _Getattr()}, "'builtins.getattr'"),
])
def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path, payload, needle):
    canary = tmp_path / "CANARY"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload(canary)))
    with pytest.raises(stylemix.UnsafeModelFileError, match=needle):
        stylemix.load_generator(path)
    assert not canary.exists()


def test_hostile_torch_checkpoint_is_refused(tmp_path):
    canary = tmp_path / "CANARY"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": _System(f"touch {canary}")}, path)
    with pytest.raises(stylemix.UnsafeModelFileError, match="posix.system"):
        stylemix.load_generator(path)
    assert not canary.exists()


def test_persistent_record_with_source_is_never_executed(tmp_path):
    # NVIDIA stores module source in each record; ours keeps it as text and never runs it.
    data = bytearray(NV_BASE.read_bytes())
    marker = b"# module source omitted from this fixture: data only\n"
    evil = b"open('CANARY','w')#".ljust(len(marker) - 1, b" ") + b"\n"
    data = bytes(data).replace(marker, evil)
    path = tmp_path / "src.pkl"
    path.write_bytes(data)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        G = stylemix.load_generator(path)
    finally:
        os.chdir(cwd)
    assert G.img_resolution == 64 and not (tmp_path / "CANARY").exists()


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_truncated_pickle(tmp_path, cut):
    data = NV_BASE.read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(stylemix.ModelLoadError, match="truncated or corrupt"):
        stylemix.load_generator(path)


def test_truncated_and_corrupt_torch_checkpoint(tmp_path):
    data = ROSINALITY.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(stylemix.ModelLoadError, match="truncated or corrupt"):
        stylemix.load_generator(tmp_path / "cut.pt")


def test_corrupt_safetensors(tmp_path, nv_pair):
    stylemix.save(nv_pair[0], tmp_path / "g.safetensors")
    data = (tmp_path / "g.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(stylemix.ModelLoadError, match="not a readable safetensors"):
        stylemix.load_generator(tmp_path / "cut.safetensors")


def test_foreign_safetensors_is_named(tmp_path):
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(stylemix.ModelLoadError, match="not a stylemix generator"):
        stylemix.load_generator(tmp_path / "other.safetensors")


@pytest.mark.parametrize("content,needle", [
    (b"", "is empty"),
    (b"hello, I am a text file\n", "not a model file"),
    (b"\x1f\x8b\x08\x00" + b"\0" * 20, "gzip"),
])
def test_unknown_formats(tmp_path, content, needle):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(stylemix.ModelLoadError, match=needle):
        stylemix.load_generator(path)


def test_missing_file():
    with pytest.raises(stylemix.ModelLoadError, match="no such model file"):
        stylemix.load_generator("/nonexistent/model.pkl")


def test_pickle_without_g_ema(tmp_path):
    path = tmp_path / "no_gema.pkl"
    path.write_bytes(pickle.dumps({"G": None, "D": None}))
    with pytest.raises(stylemix.ModelLoadError, match="no 'G_ema' network.*keys: D, G"):
        stylemix.load_generator(path)


def test_pickle_of_wrong_container(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(stylemix.ModelLoadError, match="holds a list"):
        stylemix.load_generator(path)


TF_PICKLE = FIXTURES / "tf" / "skip64_base_tf.pkl"


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_tf_pickle_reproduces_base_renders(renders, nv_pair, psi):
    G = stylemix.load_generator(TF_PICKLE)
    assert G.source.format == "tf_pkl" and G.config == nv_pair[0].config
    assert _max_diff(G, renders, "base", psi) <= 1e-4
    ours, nvidia = G.state_dict(), nv_pair[0].state_dict()
    assert all(torch.equal(ours[k], nvidia[k]) for k in nvidia)  # the same network, exactly


def test_tf_pickle_g_and_exports(tmp_path):
    G = stylemix.load_generator(TF_PICKLE, network="G")  # G carries no dlatent_avg: estimated
    assert G.source.network == "G" and torch.isfinite(G.mapping.w_avg).all()
    Gs = stylemix.load_generator(TF_PICKLE)
    stylemix.save(Gs, tmp_path / "from_tf.safetensors")
    assert stylemix.load_generator(tmp_path / "from_tf.safetensors").config == Gs.config
    stylemix.save(Gs, tmp_path / "from_tf.pkl")  # a TF pickle again, Gs rewritten in place
    assert (tmp_path / "from_tf.pkl").read_bytes() == TF_PICKLE.read_bytes()  # unchanged weights


def test_records_are_inert():
    root = safe_load_pickle(NV_BASE.read_bytes()).root
    assert isinstance(root["G_ema"], PersistentRecord)
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules


@pytest.fixture
def nvidia_pickler():
    """Write NVIDIA-style pickles as NVIDIA's code would (EasyDict kwargs, any protocol).

    The stand-in modules exist only while this fixture is active, to *write* test files.
    """
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")

    class Persistent:
        def __init__(self, meta):
            self.meta = meta

        def __reduce__(self):
            return persistence._reconstruct_persistent_obj, (self.meta,)

    def _reconstruct_persistent_obj(meta):
        return Persistent(meta)

    class EasyDict(dict):
        pass

    _reconstruct_persistent_obj.__module__ = persistence.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util.EasyDict = EasyDict
    stubs = {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
             "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    yield types.SimpleNamespace(EasyDict=EasyDict)
    for k, v in saved.items():
        sys.modules.pop(k) if v is None else sys.modules.__setitem__(k, v)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_easydict_kwargs_and_old_protocols(tmp_path, nvidia_pickler, renders, protocol):
    data = pickle.loads(NV_BASE.read_bytes())  # trusted fixture, read with the stand-ins
    kwargs = data["G_ema"].meta["state"]["_init_kwargs"]
    for key in ("mapping_kwargs", "synthesis_kwargs"):
        kwargs[key] = nvidia_pickler.EasyDict(kwargs[key])
    path = tmp_path / f"easydict_p{protocol}.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    G = stylemix.load_generator(path)
    assert _max_diff(G, renders, "base", 0.7) <= 1e-4
    if protocol >= 3:  # NVIDIA's code always wrote protocol 3 or 4
        stylemix.save(G, tmp_path / "again.pkl")
        assert stylemix.load_generator(tmp_path / "again.pkl").config == G.config
    else:
        with pytest.raises(stylemix.ExportError, match="protocol 2 or older"):
            stylemix.save(G, tmp_path / "again.pkl")


class _HugeView:
    """A tensor claiming 10^12 elements over a 4-element storage."""

    def __reduce__(self):
        storage = torch.zeros(4).untyped_storage()
        typed = torch.TypedStorage(wrap_storage=storage, dtype=torch.float32, _internal=True)
        return torch._utils._rebuild_tensor_v2, (typed, 0, (10 ** 6, 10 ** 6), (10 ** 6, 1), False,
                                                 __import__("collections").OrderedDict())


def test_gigantic_declared_tensor_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _HugeView()}))
    with pytest.raises(stylemix.ModelLoadError, match="does not fit its storage"):
        stylemix.load_generator(path)


def test_zip_bomb_checkpoint_is_refused_before_inflating(tmp_path):
    """A .pt whose member deflates to 1 GiB: refused from the zip directory alone."""
    import zipfile
    from stylemix.errors import UnsafeModelFileError
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("archive/data/0", "w", force_zip64=True) as member:
            chunk = bytes(2**20)
            for _ in range(1024):
                member.write(chunk)
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    assert bomb.stat().st_size < 5 * 2**20
    with pytest.raises(UnsafeModelFileError, match="compressed"):
        stylemix.load_generator(bomb)


def test_tf_base_blend_exports_to_a_tf_pickle(tmp_path, nv_pair, renders):
    """A .pkl of a blend whose base is a TF pickle is that TF pickle with Gs rewritten."""
    base = stylemix.load_generator(TF_PICKLE)
    B = stylemix.blend(base, nv_pair[1], BlendSpec.swap(16))
    out = tmp_path / "blend.pkl"
    stylemix.save(B, out)
    assert out.stat().st_size == TF_PICKLE.stat().st_size
    R = stylemix.load_generator(out)
    assert R.source.format == "tf_pkl"
    assert all(torch.equal(R.state_dict()[k], v) for k, v in B.state_dict().items())
    ws = torch.from_numpy(renders["swap16_lowT_psi1.0_ws"])
    with torch.no_grad():
        assert (R.synthesis(ws) - torch.from_numpy(renders["swap16_lowT_psi1.0_img"])).abs().max() < 1e-4
    # G (the training network) and D are untouched.
    G_written, G_template = (stylemix.load_generator(p, network="G") for p in (out, TF_PICKLE))
    assert all(torch.equal(a, b) for a, b in zip(G_written.state_dict().values(),
                                                 G_template.state_dict().values()))


def test_a_pkl_asked_for_a_tf_base_is_a_tf_pickle_again(tmp_path):
    """What the CLI does for `-o out.pkl`: format "nvidia_pkl" (the .pkl suffix's), written as
    the kind of pickle the base came from."""
    G = stylemix.load_generator(TF_PICKLE)
    stylemix.save(G, tmp_path / "again.pkl", format="nvidia_pkl")
    assert stylemix.load_generator(tmp_path / "again.pkl").source.format == "tf_pkl"


def test_tf_export_needs_a_tf_template(tmp_path, nv_pair):
    with pytest.raises(stylemix.ExportError, match="TF pickle as its template"):
        stylemix.save(nv_pair[0], tmp_path / "x.pkl", format="tf_pkl")


def test_array_location_checks_the_opcode_header():
    from stylemix.formats.safe_pickle import _payload_start
    raw = b"\x00\x00\x80?"
    # The same four bytes first occur inside a BINUNICODE string, then as a real SHORT_BINBYTES.
    data = b"X\x04\x00\x00\x00" + raw + b"C\x04" + raw + b"."
    assert _payload_start(data, raw, 0) == data.rindex(raw)
    assert _payload_start(b"X\x04\x00\x00\x00" + raw, raw, 0) is None


def test_any_blend_writes_into_a_given_template(tmp_path, nv_pair):
    """--template: a blend of PyTorch models into the TF pickle, a TF-based blend into an NVIDIA
    pickle; the written network equals the blend, and a template of another shape is refused."""
    B = stylemix.blend(*nv_pair, BlendSpec.swap(16))
    stylemix.save(B, tmp_path / "as_tf.pkl", template=TF_PICKLE)
    R = stylemix.load_generator(tmp_path / "as_tf.pkl")
    assert R.source.format == "tf_pkl"
    assert all(torch.equal(R.state_dict()[k], v) for k, v in B.state_dict().items())
    T = stylemix.blend(stylemix.load_generator(TF_PICKLE), nv_pair[1], BlendSpec.swap(8))
    stylemix.save(T, tmp_path / "as_nv.pkl", template=NV_BASE)
    R = stylemix.load_generator(tmp_path / "as_nv.pkl")
    assert R.source.format == "nvidia_pkl"
    assert all(torch.equal(R.state_dict()[k], v) for k, v in T.state_dict().items())
    with pytest.raises(stylemix.ExportError, match="differ at"):
        stylemix.save(B, tmp_path / "x.pkl", template=FIXTURES / "stylegan3" / "sg3t64_base.pkl")
    with pytest.raises(stylemix.ExportError, match=".pkl output only"):
        stylemix.save(B, tmp_path / "x.safetensors", template=TF_PICKLE)
    rosinality_blend = stylemix.blend(stylemix.load_generator(ROSINALITY), nv_pair[1], BlendSpec.swap(16))
    with pytest.raises(stylemix.ExportError, match="--template"):
        stylemix.save(rosinality_blend, tmp_path / "x.pkl")


def test_one_table_of_formats_is_what_the_loader_cli_and_page_read(tmp_path):
    from stylemix import formats
    from stylemix.ui.pairs import MODEL_SUFFIXES
    assert MODEL_SUFFIXES == (".pkl", ".pt", ".pth", ".safetensors")
    assert MODEL_SUFFIXES == tuple(dict.fromkeys(s for f in formats.TABLE for s in f.suffixes))
    # a TF pickle is claimed before NVIDIA's reader sees it; each file by its own row
    for path, name in ((TF_PICKLE, "tf_pkl"), (NV_BASE, "nvidia_pkl"), (ROSINALITY, "rosinality")):
        fmt, _ = formats.open_model(path)
        assert fmt.name == name and stylemix.load_generator(path).source.format == name
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello")
    with pytest.raises(stylemix.ModelLoadError, match="NVIDIA .pkl, rosinality .pt or stylemix .safetensors"):
        formats.detect_format(unknown)
