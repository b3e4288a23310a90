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

import numpy as np
import torch

from ..errors import ModelLoadError, UnsupportedModelError
from ..networks import Generator, GeneratorConfig
from .common import ModelSource, build_generator, file_sha256
from .safe_pickle import TFNetworkRecord

NETWORKS = {"G_ema": 2, "Gs": 2, "G": 0}
_HARMLESS = {"label_size", "num_fp16_res", "conv_clamp", "architecture", "mapping_layers",
             "mapping_lrmul", "fmap_base", "fmap_max", "latent_size", "dlatent_size", "resolution",
             "num_channels", "fmap_decay", "fmap_min", "resample_kernel", "nonlinearity",
             "mapping_nonlinearity", "dlatent_avg_beta", "randomize_noise", "is_template_graph",
             "truncation_psi", "truncation_cutoff", "style_mixing_prob", "fused_modconv",
             "use_noise", "mapping_fmaps", "label_fmaps", "dtype", "is_validation", "return_dlatents"}


def is_tf_root(root) -> bool:
    return isinstance(root, tuple) and len(root) == 3 and all(isinstance(v, TFNetworkRecord) for v in root)


def _variables(record: TFNetworkRecord, what: str) -> dict[str, np.ndarray]:
    state = record.state
    if not isinstance(state, dict) or not isinstance(state.get("variables"), list):
        raise ModelLoadError(f"{what} in the TensorFlow pickle has no variables")
    out = {}
    for item in state["variables"]:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], np.ndarray)):
            raise ModelLoadError(f"{what} in the TensorFlow pickle has a malformed variable")
        out[str(item[0])] = item[1]
    return out


def _config(kwargs: dict) -> GeneratorConfig:
    unknown = sorted(set(kwargs) - _HARMLESS)
    if unknown:
        raise UnsupportedModelError(f"TensorFlow generator option '{unknown[0]}' is not supported")
    if float(kwargs.get("fmap_decay", 1.0)) != 1.0 or int(kwargs.get("fmap_min", 1)) > 1:
        raise UnsupportedModelError("TensorFlow generators with fmap_decay ≠ 1 or fmap_min > 1 are not supported")
    for key, want in (("nonlinearity", "lrelu"), ("mapping_nonlinearity", "lrelu")):
        if kwargs.get(key, want) != want:
            raise UnsupportedModelError(f"TensorFlow generator with {key} '{kwargs[key]}' is not supported")
    try:
        return GeneratorConfig(
            z_dim=int(kwargs["latent_size"]), c_dim=int(kwargs.get("label_size", 0)),
            w_dim=int(kwargs["dlatent_size"]), img_resolution=int(kwargs["resolution"]),
            img_channels=int(kwargs.get("num_channels", 3)),
            mapping_layers=int(kwargs.get("mapping_layers", 8)),
            mapping_lr_multiplier=float(kwargs.get("mapping_lrmul", 0.01)),
            # TF: channels = fmap_base / 2^(log2(res) − 1), i.e. NVIDIA's channel_base = 2·fmap_base
            channel_base=2 * int(kwargs.get("fmap_base", 16384)), channel_max=int(kwargs.get("fmap_max", 512)),
            num_fp16_res=int(kwargs.get("num_fp16_res", 0)), conv_clamp=kwargs.get("conv_clamp"),
            architecture=str(kwargs.get("architecture", "skip")),
            resample_filter=[int(v) for v in kwargs.get("resample_kernel", [1, 3, 3, 1])])
    except KeyError as exc:
        raise ModelLoadError(f"TensorFlow generator lacks setting {exc}") from None


def to_nvidia(cfg: GeneratorConfig, mapping: dict, synthesis: dict, top: dict) -> dict[str, torch.Tensor]:
    def t(array) -> torch.Tensor:
        return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))  # keeps 0-d shapes

    out: dict[str, torch.Tensor] = {}
    for i in range(cfg.mapping_layers):
        out[f"mapping.fc{i}.weight"] = t(mapping[f"Dense{i}/weight"].T)
        out[f"mapping.fc{i}.bias"] = t(mapping[f"Dense{i}/bias"])
    if cfg.c_dim:
        out["mapping.embed.weight"] = t(mapping["LabelEmbed/weight"].T)
        out["mapping.embed.bias"] = t(mapping["LabelEmbed/bias"])
    if "dlatent_avg" in top:
        out["mapping.w_avg"] = t(top["dlatent_avg"])

    def layer(nv: str, tf: str, flip: bool = False, modulated: bool = True, noise: bool = True):
        w = synthesis[f"{tf}/weight"]
        if flip:
            w = w[::-1, ::-1]
        out[f"{nv}.weight"] = t(w.transpose(3, 2, 0, 1))
        if f"{tf}/bias" in synthesis:
            out[f"{nv}.bias"] = t(synthesis[f"{tf}/bias"])
        if modulated:
            out[f"{nv}.affine.weight"] = t(synthesis[f"{tf}/mod_weight"].T)
            out[f"{nv}.affine.bias"] = t(synthesis[f"{tf}/mod_bias"] + 1)  # TF stores bias − 1
        if noise:
            out[f"{nv}.noise_strength"] = t(synthesis[f"{tf}/noise_strength"])

    out["synthesis.b4.const"] = t(synthesis["4x4/Const/const"][0])
    layer("synthesis.b4.conv1", "4x4/Conv")
    noise_layers = ["synthesis.b4.conv1"]
    for res in cfg.block_resolutions:
        nv, tf = f"synthesis.b{res}", f"{res}x{res}"
        if res > 4:
            layer(f"{nv}.conv0", f"{tf}/Conv0_up", flip=True)
            layer(f"{nv}.conv1", f"{tf}/Conv1")
            noise_layers += [f"{nv}.conv0", f"{nv}.conv1"]
            if cfg.architecture == "resnet":
                layer(f"{nv}.skip", f"{tf}/Skip", modulated=False, noise=False)
        if res == cfg.img_resolution or cfg.architecture == "skip":
            layer(f"{nv}.torgb", f"{tf}/ToRGB", noise=False)
    for i, name in enumerate(noise_layers):
        out[f"{name}.noise_const"] = t(synthesis[f"noise{i}"][0, 0])
    return out


def from_root(root, path: str | os.PathLike, network: str = "G_ema", device="cpu") -> Generator:
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {tuple(NETWORKS)}, not {network!r}")
    record = root[NETWORKS[network]]
    state = record.state if isinstance(record.state, dict) else {}
    components = state.get("components") or {}
    if not all(isinstance(components.get(k), TFNetworkRecord) for k in ("mapping", "synthesis")):
        raise ModelLoadError("the TensorFlow generator lacks its mapping/synthesis components")
    cfg = _config(dict(state.get("static_kwargs") or {}))
    try:
        tensors = to_nvidia(cfg, _variables(components["mapping"], "mapping"),
                            _variables(components["synthesis"], "synthesis"),
                            _variables(record, "the generator"))
    except KeyError as exc:
        raise ModelLoadError(f"the TensorFlow generator lacks variable {exc}") from None
    reference = Generator(cfg).state_dict()
    for key, value in reference.items():
        if key.endswith("resample_filter") or key == "mapping.w_avg":
            tensors.setdefault(key, value)
    label = "Gs" if NETWORKS[network] == 2 else "G"  # TF's names for the EMA and raw generators
    source = ModelSource("tf_pkl", os.path.abspath(path), file_sha256(path), label)
    G = build_generator(cfg, tensors, source, device, what=os.path.basename(path))
    if "dlatent_avg" not in _variables(record, "the generator"):
        G.estimate_w_avg()  # G (not Gs) carries no average: estimate it
    return G
