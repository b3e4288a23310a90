"""rosinality/stylegan2-pytorch checkpoints (``torch.save({'g_ema': ..., 'latent_avg': ...})``).

The layers are the same maths as NVIDIA's under other names, so loading is a renaming:

    style.{i+1}            → mapping.fc{i}            input.input  → synthesis.b4.const
    conv1 / to_rgb1        → synthesis.b4.conv1/torgb  noises.noise_0 → b4.conv1.noise_const
    convs.{2k}, convs.{2k+1}, to_rgbs.{k}   → b{8·2^k}.conv0, .conv1, .torgb
    noises.noise_{2k+1}, noise_{2k+2}       → b{8·2^k}.conv0/conv1.noise_const
    *.conv.modulation → *.affine,  *.noise.weight → noise_strength,  *.activate.bias → bias

rosinality generators are always 'skip', unconditional, without conv_clamp, with z_dim = w_dim.
Checkpoints written by stylemix also carry the exact config under 'stylemix_config'.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile

import torch

from ..errors import ExportError, ModelLoadError, UnsafeModelFileError, UnsupportedModelError
from ..networks import Generator, GeneratorConfig
from ..networks.ops import make_fir_filter
from ..io import atomic_write, file_sha256
from .common import ModelSource, build_generator

_LAYER_PARTS = {  # rosinality suffix → NVIDIA suffix, for StyledConv and ToRGB layers
    "conv.weight": "weight", "conv.modulation.weight": "affine.weight",
    "conv.modulation.bias": "affine.bias", "noise.weight": "noise_strength",
    "activate.bias": "bias", "bias": "bias",
}


def _check_zip_container(path: str | os.PathLike, name: str) -> None:
    """Refuse zip bombs before torch inflates anything: torch.save stores members uncompressed,
    so a compressed member, or members adding up to more than the file holds, is not a real
    checkpoint."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelLoadError(f"{name} is a damaged zip archive ({exc})") from None
    size = os.path.getsize(path)
    for member in members:
        if member.compress_type != zipfile.ZIP_STORED:
            raise UnsafeModelFileError(
                f"refusing to load {name}: member '{member.filename}' is compressed, which "
                f"torch.save never does (it would inflate to {member.file_size} bytes)")
    declared = sum(m.file_size for m in members)
    if declared > size:
        raise ModelLoadError(f"{name} declares {declared} bytes of contents in a {size}-byte file")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load`` restricted to tensors and plain containers; names any other global."""
    name = os.path.basename(path)
    _check_zip_container(path, name)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found or "Weights only load failed" in str(exc):
            what = f"'{found.group(1)}'" if found else "an object that is not a plain tensor"
            raise UnsafeModelFileError(
                f"refusing to load {name}: it asks for {what}, which could run code") from None
        raise ModelLoadError(f"{name} is a corrupt torch checkpoint ({_first_line(exc)})") from None
    except MemoryError:
        raise ModelLoadError(f"{name} declares more data than fits in memory") from None
    except Exception as exc:  # weights-only loading ran nothing: any failure means bad data
        raise ModelLoadError(f"{name} is truncated or corrupt ({_first_line(exc)})") from None
    if not isinstance(ckpt, dict):
        raise ModelLoadError(f"{name} holds a {type(ckpt).__name__}, not a checkpoint dict")
    return ckpt


def _split(g_ema: dict) -> tuple[dict, dict]:
    """Group rosinality keys: layer name → {suffix: tensor}; plus the noise buffers."""
    layers: dict[str, dict] = {}
    noises: dict[int, torch.Tensor] = {}
    for key, value in g_ema.items():
        if m := re.fullmatch(r"noises\.noise_(\d+)", key):
            noises[int(m.group(1))] = value
            continue
        m = re.fullmatch(r"(style\.\d+|input|conv1|to_rgb1|convs\.\d+|to_rgbs\.\d+)\.(.+)", key)
        if not m:
            raise ModelLoadError(f"unexpected key '{key}' in rosinality g_ema")
        layers.setdefault(m.group(1), {})[m.group(2)] = value
    return layers, noises


def _infer_config(layers: dict) -> GeneratorConfig:
    styles = sorted(int(k.split(".")[1]) for k in layers if k.startswith("style."))
    if not styles or "conv1" not in layers or "input" not in layers:
        raise ModelLoadError("rosinality g_ema lacks its mapping ('style.*') or first block")
    w_dim = layers["style.1"]["weight"].shape[0]
    n_rgbs = sum(1 for k in layers if k.startswith("to_rgbs."))
    resolution = 4 * 2 ** n_rgbs
    channels = {4: int(layers["conv1"]["conv.weight"].shape[1])}
    for k in range(n_rgbs):
        channels[8 * 2 ** k] = int(layers[f"convs.{2 * k}"]["conv.weight"].shape[1])
    ch_max = max(channels.values())
    ch_base = channels[resolution] * resolution
    fits = all(min(ch_base // r, ch_max) == c for r, c in channels.items())
    return GeneratorConfig(
        z_dim=w_dim, c_dim=0, w_dim=w_dim, img_resolution=resolution, mapping_layers=len(styles),
        channel_base=ch_base if fits else 32768, channel_max=ch_max if fits else 512,
        channels=None if fits else channels, architecture="skip")


def to_nvidia(g_ema: dict, latent_avg: torch.Tensor | None) -> dict:
    """Rename a rosinality state dict to NVIDIA names (FIR filter buffers are not included)."""
    layers, noises = _split(g_ema)
    out: dict[str, torch.Tensor] = {}

    def put(ros_layer: str, nv_prefix: str) -> None:
        for suffix, value in layers.pop(ros_layer, {}).items():
            if suffix.endswith("kernel"):
                _check_blur_kernel(ros_layer, value)
                continue
            if suffix not in _LAYER_PARTS:
                raise ModelLoadError(f"unexpected key '{ros_layer}.{suffix}' in rosinality g_ema")
            if suffix in ("conv.weight",):
                value = value.squeeze(0)
            elif suffix == "noise.weight":
                value = value.reshape([])
            elif suffix == "bias" and value.ndim == 4:  # ToRGB bias [1, C, 1, 1]
                value = value.reshape(-1)
            out[f"{nv_prefix}.{_LAYER_PARTS[suffix]}"] = value

    for key in sorted(k for k in layers if k.startswith("style.")):
        i = int(key.split(".")[1])
        for suffix, value in layers.pop(key).items():
            out[f"mapping.fc{i - 1}.{suffix}"] = value
    out["synthesis.b4.const"] = layers.pop("input")["input"].squeeze(0)
    put("conv1", "synthesis.b4.conv1")
    put("to_rgb1", "synthesis.b4.torgb")
    k = 0
    while f"to_rgbs.{k}" in layers:
        res = 8 * 2 ** k
        put(f"convs.{2 * k}", f"synthesis.b{res}.conv0")
        put(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1")
        put(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
        k += 1
    if layers:
        raise ModelLoadError(f"unexpected layer '{sorted(layers)[0]}' in rosinality g_ema")
    for idx, noise in noises.items():
        res, conv = (4, "conv1") if idx == 0 else (8 * 2 ** ((idx - 1) // 2), ("conv0", "conv1")[(idx - 1) % 2])
        out[f"synthesis.b{res}.{conv}.noise_const"] = noise.reshape(noise.shape[-2:])
    if latent_avg is not None:
        out["mapping.w_avg"] = latent_avg.reshape(-1)
    return out


def _check_blur_kernel(layer: str, kernel: torch.Tensor) -> None:
    if kernel.shape != (4, 4) or not torch.allclose(kernel / kernel.sum(), make_fir_filter(),
                                                      atol=1e-6):
        raise UnsupportedModelError(
            f"{layer} uses a blur kernel other than [1, 3, 3, 1], which is not supported")


def load(path: str | os.PathLike, device="cpu") -> Generator:
    name = os.path.basename(path)
    ckpt = read_checkpoint(path)
    g_ema = ckpt.get("g_ema")
    if g_ema is None and any(str(k).startswith("style.") for k in ckpt):
        g_ema = ckpt  # a bare generator state dict
    if not isinstance(g_ema, dict):
        keys = ", ".join(sorted(map(str, ckpt))[:8]) or "none"
        raise ModelLoadError(f"{name} has no 'g_ema' generator (its keys: {keys})")
    if not all(isinstance(v, torch.Tensor) for v in g_ema.values()):
        raise ModelLoadError(f"'g_ema' in {name} holds something other than tensors")
    layers, _ = _split(g_ema)
    if "stylemix_config" in ckpt:
        try:
            config = GeneratorConfig.from_dict(json.loads(ckpt["stylemix_config"]))
        except (TypeError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"{name} has a malformed stylemix_config ({exc})") from None
    else:
        config = _infer_config(layers)
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise ModelLoadError(f"'latent_avg' in {name} is not a tensor")
    tensors = to_nvidia(g_ema, latent_avg)
    reference = Generator(config).state_dict()
    for key, value in reference.items():  # FIR filters are not stored by rosinality
        if key.endswith("resample_filter"):
            tensors.setdefault(key, value)
    if latent_avg is None:
        tensors["mapping.w_avg"] = reference["mapping.w_avg"]
    G = build_generator(config, tensors, ModelSource("rosinality", os.path.abspath(path),
                                                     file_sha256(path)), device, what=name)
    if latent_avg is None:
        G.estimate_w_avg()  # as rosinality itself does when latent_avg was not saved
    if isinstance(ckpt.get("stylemix_blend"), str):
        G.blend_info = json.loads(ckpt["stylemix_blend"])
    return G


def from_nvidia(G: Generator) -> dict:
    """Our generator as a rosinality ``g_ema`` state dict (exact keys rosinality's Generator has)."""
    cfg = G.config
    if G.family != "stylegan2":
        raise ExportError(f"cannot write a rosinality .pt: it holds StyleGAN2 generators only, "
                          f"and this is {cfg.architecture} (save as .pkl or .safetensors)")
    problems = []
    if cfg.architecture != "skip":
        problems.append(f"architecture '{cfg.architecture}' (rosinality has only 'skip')")
    if cfg.c_dim:
        problems.append("a class-conditional mapping")
    if cfg.z_dim != cfg.w_dim:
        problems.append(f"z_dim {cfg.z_dim} ≠ w_dim {cfg.w_dim}")
    if (not cfg.use_noise or cfg.kernel_size != 3 or cfg.synthesis_activation != "lrelu"
            or cfg.mapping_activation != "lrelu" or list(cfg.resample_filter) != [1, 3, 3, 1]
            or cfg.img_channels != 3 or cfg.embed_features or cfg.layer_features not in (None, cfg.w_dim)):
        problems.append("layer options rosinality's Generator cannot express")
    if problems:
        raise ExportError("cannot write a rosinality .pt: the generator has " + "; ".join(problems))
    sd = {k: v.detach().to("cpu", torch.float32) for k, v in G.state_dict().items()}
    blur = make_fir_filter() * 4
    out: dict[str, torch.Tensor] = {}

    def put(nv: str, ros: str, torgb: bool = False, up: bool = False) -> None:
        out[f"{ros}.conv.weight"] = sd[f"{nv}.weight"].unsqueeze(0)
        out[f"{ros}.conv.modulation.weight"] = sd[f"{nv}.affine.weight"]
        out[f"{ros}.conv.modulation.bias"] = sd[f"{nv}.affine.bias"]
        if torgb:
            out[f"{ros}.bias"] = sd[f"{nv}.bias"].reshape(1, -1, 1, 1)
            if up:
                out[f"{ros}.upsample.kernel"] = blur.clone()
            return
        out[f"{ros}.noise.weight"] = sd[f"{nv}.noise_strength"].reshape(1)
        out[f"{ros}.activate.bias"] = sd[f"{nv}.bias"]
        if up:
            out[f"{ros}.conv.blur.kernel"] = blur.clone()

    for i in range(cfg.mapping_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"].unsqueeze(0)
    put("synthesis.b4.conv1", "conv1")
    put("synthesis.b4.torgb", "to_rgb1", torgb=True)
    out["noises.noise_0"] = sd["synthesis.b4.conv1.noise_const"].reshape(1, 1, 4, 4)
    for k, res in enumerate(cfg.block_resolutions[1:]):
        put(f"synthesis.b{res}.conv0", f"convs.{2 * k}", up=True)
        put(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}")
        put(f"synthesis.b{res}.torgb", f"to_rgbs.{k}", torgb=True, up=True)
        for j, conv in enumerate(("conv0", "conv1")):
            out[f"noises.noise_{2 * k + 1 + j}"] = sd[f"synthesis.b{res}.{conv}.noise_const"].reshape(1, 1, res, res)
    return out


def save(G: Generator, path: str | os.PathLike) -> None:
    ckpt = {"g_ema": from_nvidia(G),
            "latent_avg": G.mapping.w_avg.detach().to("cpu", torch.float32).clone(),
            "stylemix_config": json.dumps(G.config.to_dict())}
    if G.blend_info:
        ckpt["stylemix_blend"] = json.dumps(G.blend_info)
    with atomic_write(path) as tmp:
        torch.save(ckpt, tmp)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]
