"""rosinality/stylegan2-pytorch checkpoints (``torch.save({'g_ema': ..., 'latent_avg': ...})``).

The layers are the same maths as NVIDIA's under other names, so loading is a renaming:

    style.{i+1}            → mapping.fc{i}            input.input  → synthesis.b4.const
    conv1 / to_rgb1        → synthesis.b4.conv1/torgb  noises.noise_0 → b4.conv1.noise_const
    convs.{2k}, convs.{2k+1}, to_rgbs.{k}   → b{8·2^k}.conv0, .conv1, .torgb
    noises.noise_{2k+1}, noise_{2k+2}       → b{8·2^k}.conv0/conv1.noise_const
    *.conv.modulation → *.affine,  *.noise.weight → noise_strength,  *.activate.bias → bias

rosinality generators are always 'skip', unconditional, without conv_clamp, with z_dim = w_dim.
Checkpoints written by stylemix also carry the exact config under 'stylemix_config'.

The ``NNNNNN.pt`` files rosinality's ``train.py`` writes hold more: ``g`` (the raw generator),
``d`` (the discriminator), ``g_ema``, optimiser states, ``ada_aug_p`` and ``args`` (an
``argparse.Namespace``), all saved from the GPU.  ``args`` is read as plain data (an
allow-listed stand-in that accepts only numbers, strings, booleans and None), storages are
mapped to the CPU, and ``d`` converts to NVIDIA's discriminator names:

    convs.0 (fromrgb)                    → b{res}.fromrgb
    convs.{i}.conv1 / .conv2 / .skip      → b{res}.conv0 / .conv1 (down) / .skip
    final_conv, final_linear.0, .1        → b4.conv, b4.fc, b4.out
"""

from __future__ import annotations

import json
import os
import re

import torch

from ..errors import ModelLoadError, UnsupportedModelError
from ..networks import Generator, GeneratorConfig
from ..networks.discriminator import Discriminator, DiscriminatorConfig
from ..networks.ops import make_fir_filter
from ..io import file_sha256, read_torch_file
from .common import ModelSource, build_generator
from .registry import TORCH_SAVE, FileFormat
# The writing side lives in rosinality_write; its names stay reachable here (rosinality.save, …).
from .rosinality_write import (ARGS_KEY, from_nvidia, generator_args, generator_call,  # noqa: F401
                               rosinality_channels, save, unwritable_reason)

_LAYER_PARTS = {  # rosinality suffix → NVIDIA suffix, for StyledConv and ToRGB layers
    "conv.weight": "weight", "conv.modulation.weight": "affine.weight",
    "conv.modulation.bias": "affine.bias", "noise.weight": "noise_strength",
    "activate.bias": "bias", "bias": "bias",
}


_PLAIN = (bool, int, float, str, type(None))


class TrainingArgs:
    """Stand-in for the ``argparse.Namespace`` of training options in rosinality checkpoints.

    Allow-listed for torch's weights-only loader under the name ``argparse.Namespace``; its
    state may hold only plain values (numbers, strings, booleans, None and lists or tuples of
    them), so reading it builds data and runs nothing."""

    def __setstate__(self, state) -> None:
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise ModelLoadError("the checkpoint's training options (args) are not a plain namespace")
        for key, value in state.items():
            items = value if isinstance(value, (list, tuple)) else (value,)
            if not all(isinstance(v, _PLAIN) for v in items):
                raise ModelLoadError(f"training option '{key}' in the checkpoint is not a plain value")
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return "TrainingArgs(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()) + ")"


def read_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load`` restricted to tensors, plain containers and a plain-data training
    Namespace; storages saved on a GPU are mapped to the CPU; names any other global."""
    return read_torch_file(path, safe_globals=[(TrainingArgs, "argparse.Namespace")])


def _refuse_other_arch(g_ema: dict, args=None) -> None:
    """One line for rosinality checkpoints of another architecture than StyleGAN2.

    ``train.py --arch swagan`` (rosinality's ``swagan.py``) writes a wavelet generator: its
    ToRGB layers output Haar sub-bands and the image is rebuilt by an inverse wavelet transform
    (keys ``iwt.*``, ``to_rgbs.*.iwt.*``/``dwt.*``), which StyleGAN2 files do not have."""
    arch = getattr(args, "arch", None)
    wavelet = any(k.startswith(("iwt.", "dwt.")) or ".iwt." in k or ".dwt." in k for k in g_ema)
    if arch == "swagan" or wavelet:
        raise UnsupportedModelError(
            "this is a rosinality SWAGAN checkpoint (train.py --arch swagan: wavelet ToRGB and "
            "'iwt' layers); stylemix reads rosinality StyleGAN2 checkpoints (--arch stylegan2), "
            "NVIDIA and TensorFlow pickles, and StyleGAN3")


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


NOISE_FILL_SEED = 0
NOISE_FILLED_NOTE = (
    "the checkpoint stores no noise maps (written before rosinality's Generator registered them "
    f"as buffers): they were filled with N(0, 1) noise from seed {NOISE_FILL_SEED}, as rosinality "
    "fills them from its own random state when it loads such a file (strict=False)")


def filled_noise_maps(config: GeneratorConfig) -> dict[str, torch.Tensor]:
    """Constant noise maps for a checkpoint that stores none, one N(0, 1) [r, r] map per layer
    in layer order, from a fixed seed so every load of the file renders the same.

    rosinality's own code (``load_state_dict(..., strict=False)``, its advice in
    rosinality/stylegan2-pytorch#71) keeps the ``torch.randn`` buffers its constructor drew, so
    'const' noise there depends on the torch seed; noise_mode 'random' and 'none' do not."""
    rng = torch.Generator().manual_seed(NOISE_FILL_SEED)
    layers = [(4, "conv1")] + [(r, c) for r in config.block_resolutions[1:] for c in ("conv0", "conv1")]
    return {f"synthesis.b{r}.{c}.noise_const": torch.randn([r, r], generator=rng) for r, c in layers}


NETWORKS = {"g_ema": "g_ema", "G_ema": "g_ema", "g": "g", "G": "g"}


def _state_dict(ckpt: dict, key: str, name: str) -> dict:
    sd = ckpt.get(key)
    if sd is None and key == "g_ema" and any(str(k).startswith("style.") for k in ckpt):
        sd = ckpt  # a bare generator state dict
    if not isinstance(sd, dict):
        keys = ", ".join(sorted(map(str, ckpt))[:8]) or "none"
        hint = " (a converted checkpoint keeps only g_ema)" if key == "g" and "g_ema" in ckpt else ""
        raise ModelLoadError(f"{name} has no '{key}' network{hint} (its keys: {keys})")
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelLoadError(f"'{key}' in {name} holds something other than tensors")
    return sd


def _generator(ckpt: dict, key: str, path, source: ModelSource, device) -> Generator:
    name = os.path.basename(path)
    g_ema = _state_dict(ckpt, key, name)
    _refuse_other_arch(g_ema, ckpt.get("args"))
    layers, noises = _split(g_ema)
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
    for tensor_name, value in reference.items():  # FIR filters are not stored by rosinality
        if tensor_name.endswith("resample_filter"):
            tensors.setdefault(tensor_name, value)
    if latent_avg is None:
        tensors["mapping.w_avg"] = reference["mapping.w_avg"]
    notes = []
    if not noises and config.use_noise:
        tensors.update(filled_noise_maps(config))
        notes.append(NOISE_FILLED_NOTE)
    G = build_generator(config, tensors, source, device, what=f"'{key}' of {name}")
    G.load_notes = notes
    if latent_avg is None:
        G.estimate_w_avg()  # as rosinality itself does when latent_avg was not saved
    if isinstance(ckpt.get("stylemix_blend"), str):
        G.blend_info = json.loads(ckpt["stylemix_blend"])
    if isinstance(ckpt.get(ARGS_KEY), str):
        try:
            G.load_notes.append("written by stylemix for rosinality's "
                                + generator_call(json.loads(ckpt[ARGS_KEY])))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # a damaged note is only a note
    return G


def _source(path, network: str) -> ModelSource:
    return ModelSource("rosinality", os.path.abspath(path), file_sha256(path),
                       None if network == "g_ema" else network)


def load(path: str | os.PathLike, device="cpu", network: str = "g_ema") -> Generator:
    """The generator ``g_ema`` (default) or ``g`` (the raw training generator; ``"G"`` also
    works) of a rosinality checkpoint, converted to NVIDIA names."""
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {tuple(NETWORKS)}, not {network!r}")
    key = NETWORKS[network]
    return _generator(read_checkpoint(path), key, path, _source(path, key), device)


def discriminator_from_state_dict(d: dict, what: str = "the checkpoint") -> Discriminator:
    """rosinality's ``Discriminator`` state dict as our (NVIDIA-named) resnet Discriminator.

    rosinality's ResBlock is NVIDIA's resnet block (blur then stride-2 convolution, a blurred
    1×1 skip, both summed and scaled by 1/√2) and its head is NVIDIA's epilogue with a
    4-wide minibatch-stddev group; only the names and the channel table differ."""
    if not all(isinstance(v, torch.Tensor) for v in d.values()):
        raise ModelLoadError(f"'d' in {what} holds something other than tensors")
    try:
        blocks = 1 + max(int(m.group(1)) for k in d if (m := re.match(r"convs\.(\d+)\.", k)))
        rgb = d["convs.0.0.weight"]
        resolution = 4 * 2 ** (blocks - 1)
        channels = {resolution: int(rgb.shape[0])}
        for i in range(1, blocks):
            channels[resolution >> i] = int(d[f"convs.{i}.conv2.1.weight"].shape[0])
    except (KeyError, ValueError, IndexError):
        raise ModelLoadError(f"'d' in {what} is not a rosinality discriminator") from None
    if blocks < 2:
        raise ModelLoadError(f"'d' in {what} is not a rosinality discriminator")
    ch_max = max(channels.values())
    ch_base = channels[resolution] * resolution
    if not all(min(ch_base // r, ch_max) == c for r, c in channels.items()):
        raise UnsupportedModelError(f"the discriminator in {what} has a channel table "
                                    f"{channels} that NVIDIA's channel_base/channel_max cannot express")
    cfg = DiscriminatorConfig(c_dim=0, img_resolution=resolution, img_channels=int(rgb.shape[1]),
                              architecture="resnet", channel_base=ch_base, channel_max=ch_max,
                              mbstd_group_size=4, mbstd_num_channels=1)
    ours: dict[str, torch.Tensor] = {}
    for key, value in d.items():
        if m := re.fullmatch(r"convs\.(\d+)\.(conv1|conv2|skip)\.(\d)\.(weight|bias|kernel)", key):
            res = resolution >> (int(m.group(1)) - 1)
            if m.group(4) == "kernel":
                _check_blur_kernel(key.rpartition(".")[0], value)
                continue
            part = {"conv1": "conv0", "conv2": "conv1", "skip": "skip"}[m.group(2)]
            ours[f"b{res}.{part}.{m.group(4)}"] = value
        elif m := re.fullmatch(r"convs\.0\.(\d)\.(weight|bias)", key):
            ours[f"b{resolution}.fromrgb.{m.group(2)}"] = value
        elif m := re.fullmatch(r"final_(conv|linear)\.(\d)\.(weight|bias)", key):
            part = {("conv", "0"): "conv", ("conv", "1"): "conv", ("linear", "0"): "fc",
                    ("linear", "1"): "out"}.get((m.group(1), m.group(2)))
            if part is None:
                raise ModelLoadError(f"unexpected key '{key}' in the discriminator of {what}")
            ours[f"b4.{part}.{m.group(3)}"] = value
        else:
            raise ModelLoadError(f"unexpected key '{key}' in the discriminator of {what}")
    D = Discriminator(cfg)
    expected = D.state_dict()
    for key, value in expected.items():
        if key.endswith("resample_filter"):
            continue
        if key not in ours:
            raise ModelLoadError(f"the discriminator in {what} lacks '{key}' (rosinality names)")
        if tuple(ours[key].shape) != tuple(value.shape) or not ours[key].is_floating_point():
            raise ModelLoadError(f"discriminator parameter '{key}' in {what} has shape "
                                 f"{list(ours[key].shape)}, expected {list(value.shape)}")
        if not torch.isfinite(ours[key]).all():
            raise ModelLoadError(f"discriminator parameter '{key}' in {what} is not finite")
    with torch.no_grad():
        for key, value in ours.items():
            expected[key].copy_(value.float())
    return D.eval().requires_grad_(False)


def load_training_networks(path: str | os.PathLike, device="cpu", with_g: bool = True):
    """(g or None, d or None, g_ema) from one read of a rosinality checkpoint: what
    ``stylemix finetune`` starts from.  ``train.py`` checkpoints hold all three; converted
    ones only ``g_ema``.  ``with_g=False`` skips ``g`` (projection needs only g_ema and d)."""
    name = os.path.basename(path)
    ckpt = read_checkpoint(path)
    G_ema = _generator(ckpt, "g_ema", path, _source(path, "g_ema"), device)
    G = None
    if with_g and isinstance(ckpt.get("g"), dict):
        G = _generator(ckpt, "g", path, _source(path, "g"), device)
    D = None
    if isinstance(ckpt.get("d"), dict):
        D = discriminator_from_state_dict(ckpt["d"], name).to(device)
    return G, D, G_ema


def load_discriminator(path: str | os.PathLike, device="cpu"):
    """The checkpoint's discriminator ``d`` as ours, or None when it holds none."""
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt.get("d"), dict):
        return None
    return discriminator_from_state_dict(ckpt["d"], os.path.basename(path)).to(device)


def _load(contents, path, network: str = "g_ema", device="cpu") -> Generator:
    return load(path, device=device, network=network)


def _load_discriminator(contents, path, device="cpu"):
    return load_discriminator(path, device=device)


def _with_discriminator(contents, path, network: str = "g_ema", device="cpu"):
    _, D, G_ema = load_training_networks(path, device=device, with_g=False)
    return G_ema, D


FORMAT = FileFormat("rosinality", "rosinality .pt", "rosinality checkpoint", TORCH_SAVE, (".pt", ".pth"),
                    load=_load, load_discriminator=_load_discriminator,
                    load_with_discriminator=_with_discriminator, save=save, save_takes_custom_channels=True)
