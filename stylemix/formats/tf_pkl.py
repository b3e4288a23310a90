"""Old TensorFlow StyleGAN2 pickles: a ``(G, D, Gs)`` tuple of ``dnnlib.tflib.network.Network``.

Read through the same allow-listed unpickler (no TensorFlow, nothing executed); each network's
``variables`` are (TF name, numpy array) pairs that map onto NVIDIA's PyTorch names:

    Dense{i}/weight [in, out]              → mapping.fc{i}.weight (transposed)
    {r}x{r}/Conv0_up/weight [k, k, in, out] → b{r}.conv0.weight, transposed and flipped in space
    {r}x{r}/Conv|Conv1|ToRGB/weight         → b{r}.conv1/torgb.weight, transposed
    */mod_weight, */mod_bias               → *.affine.weight (transposed), *.affine.bias (+1)
    noise{i}                               → noise_const, in layer order
    dlatent_avg (on Gs)                    → mapping.w_avg
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ExportError, ModelLoadError, UnsupportedModelError
from ..networks import Generator, GeneratorConfig
from ..io import atomic_write, file_sha256
from .common import ModelSource, build_generator, template_for
from .registry import PICKLE, FileFormat
from .safe_pickle import TFNetworkRecord, safe_load_pickle

NETWORKS = {"G_ema": 2, "Gs": 2, "G": 0}

# What the TensorFlow network code (NVlabs/stylegan2 ``G_main``, ``G_mapping``,
# ``G_synthesis_stylegan2``) uses for every setting a pickle does not store -- the same values
# NVIDIA's ``legacy.py`` assumes.  Official networks and anything trained with ``config-f``
# store only ``num_channels``, ``resolution`` and ``label_size``; ``config-e`` adds
# ``fmap_base`` 8192.
TF_DEFAULTS = {
    "latent_size": 512, "label_size": 0, "dlatent_size": 512, "resolution": 1024,
    "num_channels": 3, "mapping_layers": 8, "mapping_lrmul": 0.01,
    "mapping_nonlinearity": "lrelu", "nonlinearity": "lrelu", "fmap_base": 16384,
    "fmap_max": 512, "fmap_decay": 1.0, "fmap_min": 1, "architecture": "skip",
    "resample_kernel": [1, 3, 3, 1], "num_fp16_res": 0, "conv_clamp": None, "use_noise": True,
    "normalize_latents": True,
}
# Settings that only steer training or the TF graph, never what the network computes.
_NO_EFFECT = {"truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
              "dlatent_avg_beta", "w_avg_beta", "style_mixing_prob", "randomize_noise",
              "is_training", "is_validation", "is_template_graph", "return_dlatents",
              "structure", "conditioning", "fused_modconv", "dtype", "impl", "verbose"}
# Options of the non-square forks of NVlabs/stylegan2 that set the network's shape: the start
# size (eps696/stylegan2 ``init_res`` [h, w]; ``min_h``/``min_w`` with ``res_log2`` in others)
# and an output ``size`` / ``scale_type``. The start size is read from the 4×4 constant's shape,
# which every such network stores; these settings are checked against it.
_SHAPE_OPTIONS = {"init_res", "min_h", "min_w", "res_log2", "size", "scale_type"}
_MAPPING_WIDTHS = {"mapping_fmaps", "label_fmaps"}  # read together with the variables' shapes


def is_tf_root(root) -> bool:
    return isinstance(root, tuple) and len(root) == 3 and all(isinstance(v, TFNetworkRecord) for v in root)


def _variables(record: TFNetworkRecord, what: str) -> dict[str, np.ndarray]:
    """(TF name → array); 0-d variables come as numpy scalars (TensorFlow hands them back so)."""
    state = record.state
    if not isinstance(state, dict) or not isinstance(state.get("variables"), list):
        raise ModelLoadError(f"{what} in the TensorFlow pickle has no variables")
    out = {}
    for item in state["variables"]:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], (np.ndarray, np.generic))):
            raise ModelLoadError(f"{what} in the TensorFlow pickle has a malformed variable")
        value = item[1] if isinstance(item[1], np.ndarray) else np.asarray(item[1])
        if value.dtype.kind not in "fiu":
            raise ModelLoadError(f"TF variable '{item[0]}' of {what} holds {value.dtype}, not numbers")
        out[item[0]] = value
    return out


def _shape(kwargs: dict, synthesis_vars: dict | None) -> tuple[int | None, tuple[int, int]]:
    """(resolution or None when unstored, init_res) from the shape options and the variables.

    Raises UnsupportedModelError for an output cropped, padded or scaled to another size (the
    forks' ``size`` with a ``scale_type``), which changes the computation of every block."""
    const = (synthesis_vars or {}).get("4x4/Const/const")
    init_res = tuple(int(v) for v in const.shape[2:]) if const is not None and const.ndim == 4 else (4, 4)
    stored = kwargs.get("init_res")
    if stored is None and kwargs.get("min_h") is not None:
        stored = (kwargs.get("min_h"), kwargs.get("min_w"))
    try:
        if stored is not None and tuple(int(v) for v in stored) != init_res:
            raise ModelLoadError(f"the TensorFlow generator's start size {list(stored)} does not "
                                 f"match its constant's shape {list(init_res)}")
    except (TypeError, ValueError):
        raise ModelLoadError(f"the TensorFlow generator has a malformed start size {stored!r}") from None
    resolution = kwargs.get("resolution")
    if resolution is None and kwargs.get("res_log2") is not None:
        resolution = 2 ** int(kwargs["res_log2"])
    if resolution is None and synthesis_vars:  # the largest block the variables hold
        scales = [int(m.group(1)) for k in synthesis_vars if (m := re.match(r"(\d+)x\1/", k))]
        resolution = max(scales) if scales else None
    size = kwargs.get("size")
    if size is not None and resolution is not None:
        natural = [int(resolution) * init_res[0] // 4, int(resolution) * init_res[1] // 4]
        if [int(v) for v in size] != natural:
            raise UnsupportedModelError(
                f"this TensorFlow generator fits its output to {list(size)} px "
                f"(scale_type {kwargs.get('scale_type')!r}) instead of the network's own "
                f"{natural}; stylemix renders networks at their own size only")
    return (None if resolution is None else int(resolution)), init_res


def _config(kwargs: dict, mapping_vars: dict | None = None,
            synthesis_vars: dict | None = None) -> GeneratorConfig:
    """Our config from a TF generator's ``static_kwargs``, unstored settings at TF_DEFAULTS.

    Hidden mapping widths (``mapping_fmaps``/``label_fmaps``) default to 512 in NVlabs/stylegan2
    and to ``dlatent_size`` in stylegan2-ada's TF code; when unstored they are read from the
    variables' shapes, which agree with whichever code wrote the file."""
    unknown = sorted(set(kwargs) - set(TF_DEFAULTS) - _NO_EFFECT - _MAPPING_WIDTHS - _SHAPE_OPTIONS)
    if unknown:
        raise UnsupportedModelError(f"TensorFlow generator option '{unknown[0]}' is not supported")
    resolution, init_res = _shape(kwargs, synthesis_vars)
    get = {**TF_DEFAULTS, **{k: v for k, v in kwargs.items() if v is not None or k == "conv_clamp"}}
    if resolution is not None:
        get["resolution"] = resolution
    if float(get["fmap_decay"]) != 1.0 or int(get["fmap_min"]) > 1:
        raise UnsupportedModelError("TensorFlow generators with fmap_decay ≠ 1 or fmap_min > 1 are not supported")
    if not get["normalize_latents"]:
        raise UnsupportedModelError("TensorFlow generators without latent normalisation are not supported")
    mapping_vars = mapping_vars or {}
    dense0, embed = mapping_vars.get("Dense0/weight"), mapping_vars.get("LabelEmbed/weight")
    layer_features = kwargs.get("mapping_fmaps")
    if layer_features is None and dense0 is not None and dense0.ndim == 2 and int(get["mapping_layers"]) > 1:
        layer_features = int(dense0.shape[1])
    embed_features = kwargs.get("label_fmaps")
    if embed_features is None and embed is not None and embed.ndim == 2:
        embed_features = int(embed.shape[1])
    if "LabelConcat/weight" in mapping_vars:
        raise UnsupportedModelError(
            "this TensorFlow generator concatenates labels unnormalised ('LabelConcat', "
            "NVlabs/stylegan2's conditional mapping), which NVIDIA's converter does not read either")
    try:
        w_dim = int(get["dlatent_size"])
        return GeneratorConfig(
            z_dim=int(get["latent_size"]), c_dim=int(get["label_size"]), w_dim=w_dim,
            img_resolution=int(get["resolution"]), img_channels=int(get["num_channels"]),
            mapping_layers=int(get["mapping_layers"]),
            embed_features=None if embed_features in (None, w_dim) else int(embed_features),
            layer_features=None if layer_features in (None, w_dim) else int(layer_features),
            mapping_activation=str(get["mapping_nonlinearity"]),
            mapping_lr_multiplier=float(get["mapping_lrmul"]),
            # TF: channels = fmap_base / 2^(log2(res) − 1), i.e. NVIDIA's channel_base = 2·fmap_base
            channel_base=2 * int(get["fmap_base"]), channel_max=int(get["fmap_max"]),
            num_fp16_res=int(get["num_fp16_res"]),
            conv_clamp=None if get["conv_clamp"] is None else float(get["conv_clamp"]),
            architecture=str(get["architecture"]),
            resample_filter=[int(v) for v in get["resample_kernel"]],
            use_noise=bool(get["use_noise"]), synthesis_activation=str(get["nonlinearity"]),
            init_res=init_res)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ModelLoadError):
            raise
        raise ModelLoadError(f"TensorFlow generator has a malformed setting ({exc})") from None


@dataclass(frozen=True)
class Link:
    """One TF variable and the state-dict entry it becomes."""

    ours: str   # our (NVIDIA PyTorch) name
    where: str  # "mapping", "synthesis" or "top" (variables of the generator itself)
    tf: str     # TF variable name
    kind: str   # how the array is laid out: see _TO_OURS


# TF layout → ours, and back. Convolutions are [k, k, in, out] in TF; upsampling ones are also
# flipped in space there; TF stores modulation biases minus one.
_TO_OURS = {
    "plain": lambda a: a,
    "dense": lambda a: a.T,
    "conv": lambda a: a.transpose(3, 2, 0, 1),
    "conv_flip": lambda a: a[::-1, ::-1].transpose(3, 2, 0, 1),
    "mod_bias": lambda a: a + 1,
    "const": lambda a: a[0],
    "noise": lambda a: a[0, 0],
}
_TO_TF = {
    "plain": lambda t: t,
    "dense": lambda t: t.T,
    "conv": lambda t: t.transpose(2, 3, 1, 0),
    "conv_flip": lambda t: t.transpose(2, 3, 1, 0)[::-1, ::-1],
    "mod_bias": lambda t: t - 1,
    "const": lambda t: t[None],
    "noise": lambda t: t[None, None],
}


def links(cfg: GeneratorConfig, with_avg: bool = True) -> list[Link]:
    """Every TF variable of a generator with this config, and where it goes."""
    out: list[Link] = []
    for i in range(cfg.mapping_layers):
        out += [Link(f"mapping.fc{i}.weight", "mapping", f"Dense{i}/weight", "dense"),
                Link(f"mapping.fc{i}.bias", "mapping", f"Dense{i}/bias", "plain")]
    if cfg.c_dim:
        out += [Link("mapping.embed.weight", "mapping", "LabelEmbed/weight", "dense"),
                Link("mapping.embed.bias", "mapping", "LabelEmbed/bias", "plain")]
    if with_avg:
        out.append(Link("mapping.w_avg", "top", "dlatent_avg", "plain"))

    def layer(nv: str, tf: str, flip: bool = False, modulated: bool = True, noise: bool = True,
              bias: bool = True):
        out.append(Link(f"{nv}.weight", "synthesis", f"{tf}/weight", "conv_flip" if flip else "conv"))
        if bias:
            out.append(Link(f"{nv}.bias", "synthesis", f"{tf}/bias", "plain"))
        if modulated:
            out.append(Link(f"{nv}.affine.weight", "synthesis", f"{tf}/mod_weight", "dense"))
            out.append(Link(f"{nv}.affine.bias", "synthesis", f"{tf}/mod_bias", "mod_bias"))
        if noise and cfg.use_noise:
            out.append(Link(f"{nv}.noise_strength", "synthesis", f"{tf}/noise_strength", "plain"))

    out.append(Link("synthesis.b4.const", "synthesis", "4x4/Const/const", "const"))
    layer("synthesis.b4.conv1", "4x4/Conv")
    noise_layers = ["synthesis.b4.conv1"]
    for res in cfg.block_resolutions:
        nv, tf = f"synthesis.b{res}", f"{res}x{res}"
        if res > 4:
            layer(f"{nv}.conv0", f"{tf}/Conv0_up", flip=True)
            layer(f"{nv}.conv1", f"{tf}/Conv1")
            noise_layers += [f"{nv}.conv0", f"{nv}.conv1"]
            if cfg.architecture == "resnet":
                layer(f"{nv}.skip", f"{tf}/Skip", modulated=False, noise=False, bias=False)
        if res == cfg.img_resolution or cfg.architecture == "skip":
            layer(f"{nv}.torgb", f"{tf}/ToRGB", noise=False)
    out += [Link(f"{name}.noise_const", "synthesis", f"noise{i}", "noise")
            for i, name in enumerate(noise_layers) if cfg.use_noise]
    return out


def to_nvidia(cfg: GeneratorConfig, mapping: dict, synthesis: dict, top: dict) -> dict[str, torch.Tensor]:
    groups = {"mapping": mapping, "synthesis": synthesis, "top": top}
    out: dict[str, torch.Tensor] = {}
    for link in links(cfg, with_avg="dlatent_avg" in top):
        array = _TO_OURS[link.kind](groups[link.where][link.tf])
        out[link.ours] = torch.from_numpy(np.array(array, dtype=np.float32, copy=True))  # keeps 0-d
    return out


def _network_variables(record: TFNetworkRecord) -> dict[str, dict[str, np.ndarray]]:
    state = record.state if isinstance(record.state, dict) else {}
    components = state.get("components") or {}
    if not all(isinstance(components.get(k), TFNetworkRecord) for k in ("mapping", "synthesis")):
        raise ModelLoadError("the TensorFlow generator lacks its mapping/synthesis components")
    return {"mapping": _variables(components["mapping"], "mapping"),
            "synthesis": _variables(components["synthesis"], "synthesis"),
            "top": _variables(record, "the generator")}


def _generator_config(record: TFNetworkRecord, variables: dict) -> GeneratorConfig:
    state = record.state if isinstance(record.state, dict) else {}
    version = state.get("version", 4)
    if not isinstance(version, int) or version < 4:
        raise UnsupportedModelError(
            f"this TensorFlow pickle is network format version {version!r}; only version 4 "
            "(StyleGAN2 and later) is readable, as with NVIDIA's own converter")
    kwargs = state.get("static_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ModelLoadError("the TensorFlow generator's settings (static_kwargs) are not a dict")
    return _config(dict(kwargs), variables["mapping"], variables["synthesis"])


def save(G: Generator, path: str | os.PathLike, template: str | os.PathLike | None = None) -> None:
    """Write ``G`` into a copy of the TF pickle it (or its blend base) came from, as the network
    it was loaded from (``Gs`` unless ``G`` was asked for).

    Like NVIDIA .pkl export, the original file is the template: only the bytes of Gs's arrays
    change, so G, D, the stored build source and every setting stay as they were.  Without a
    TF template there is nothing to write into: TF pickles carry NVIDIA's network source code,
    which stylemix neither has nor ships.
    """
    template_path, network = template_for(G, "tf_pkl", template, "Gs", "a TF pickle")
    with open(template_path, "rb") as f:
        data = bytearray(f.read())
    root = safe_load_pickle(bytes(data), locate_arrays=True).root
    if not is_tf_root(root):
        raise ExportError(f"{os.path.basename(template_path)} is not a TensorFlow StyleGAN2 pickle")
    write_into(G, data, root, network, path)


def write_into(G: Generator, data: bytearray, root, network: str, path: str | os.PathLike) -> None:
    """Overwrite the arrays of ``network`` in the TF pickle image ``data`` (parsed as ``root``
    with arrays located) with ``G``'s values, and write the result to ``path``."""
    if G.family != "stylegan2":
        raise ExportError("TensorFlow pickles hold StyleGAN2 generators only")
    record = root[NETWORKS.get(network, 2)]
    variables = _network_variables(record)
    ours = {k: v.detach().to("cpu", torch.float32).numpy() for k, v in G.state_dict().items()}
    cfg = _generator_config(record, variables)
    if cfg.architecture != G.config.architecture or cfg.c_dim != G.config.c_dim:
        raise ExportError(f"the generator ({G.config.architecture}) does not fit the TF template "
                          f"({cfg.architecture}, c_dim {cfg.c_dim})")
    missing = [link.ours for link in links(cfg) if link.ours not in ours]
    if missing:
        raise ExportError(f"the TF template has a variable for '{missing[0]}', which this generator lacks")
    for link in links(cfg, with_avg="dlatent_avg" in variables["top"]):
        old = variables[link.where][link.tf]
        new = np.asarray(_TO_TF[link.kind](ours[link.ours]), dtype=old.dtype)
        offset = getattr(old, "stylemix_offset", None)
        if offset is None or new.shape != old.shape or not (old.flags.c_contiguous or old.flags.f_contiguous):
            raise ExportError(f"cannot locate the bytes of TF variable '{link.tf}' in the template "
                              "(an unusual pickle layout); save as .pkl, .pt or .safetensors instead")
        # Arrays keep the memory order they were pickled in (TF often stores Fortran order).
        data[offset: offset + new.nbytes] = new.tobytes(order="C" if old.flags.c_contiguous else "F")
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)


def from_root(root, path: str | os.PathLike, network: str = "G_ema", device="cpu") -> Generator:
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {tuple(NETWORKS)}, not {network!r}")
    record = root[NETWORKS[network]]
    variables = _network_variables(record)
    cfg = _generator_config(record, variables)
    try:
        tensors = to_nvidia(cfg, variables["mapping"], variables["synthesis"], variables["top"])
    except KeyError as exc:
        raise ModelLoadError(f"the TensorFlow generator lacks variable {exc}") from None
    reference = Generator(cfg).state_dict()
    for key, value in reference.items():
        if key.endswith("resample_filter") or key == "mapping.w_avg":
            tensors.setdefault(key, value)
    label = "Gs" if NETWORKS[network] == 2 else "G"  # TF's names for the EMA and raw generators
    source = ModelSource("tf_pkl", os.path.abspath(path), file_sha256(path), label)
    G = build_generator(cfg, tensors, source, device, what=os.path.basename(path))
    if "dlatent_avg" not in variables["top"]:
        G.estimate_w_avg()  # G (not Gs) carries no average: estimate it
    return G


# Read as a pickle's (G, D, Gs) tuple (TF's D is not rebuilt: projection runs without its
# features); written when a .pkl is asked for a TF base (or template).
FORMAT = FileFormat("tf_pkl", "TensorFlow .pkl", "TensorFlow StyleGAN2 pickle", PICKLE, (".pkl",),
                    load=from_root, save=save, chosen_by_suffix=False, claims=is_tf_root)
