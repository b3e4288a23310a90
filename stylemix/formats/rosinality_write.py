"""Writing rosinality checkpoints (``.pt``) that rosinality's own ``Generator`` loads: the
channel table it can build, why a network cannot be written, the ``Generator(...)`` call that
loads a written file, and the ``g_ema`` state dict itself.  Reading is ``rosinality.py``.
"""

from __future__ import annotations

import json
import os

import torch

from ..errors import ExportError
from ..io import atomic_write
from ..networks import Generator, GeneratorConfig
from ..networks.ops import make_fir_filter


# rosinality's Generator (model.py): 512 channels up to 32 px, then 256, 128, 64, 32, 16 times
# channel_multiplier at 64 … 1024 px.
_ROSINALITY_BASE_CHANNELS = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16, 2048: 8}


def rosinality_channels(size: int, channel_multiplier: int) -> dict[int, int]:
    """The channels per resolution rosinality's ``Generator(size, …, channel_multiplier)`` builds."""
    return {r: 512 if r <= 32 else _ROSINALITY_BASE_CHANNELS[r] * channel_multiplier
            for r in (2 ** i for i in range(2, size.bit_length()))}


_CHANNEL_RULE = ("which no channel_multiplier gives (rosinality: 512 up to 32 px, then 256·m, "
                 "128·m, 64·m … at 64, 128, 256 … px)")


def _layout_problems(cfg: GeneratorConfig) -> list[str]:
    """What rosinality's Generator cannot express in ``cfg``, its channel table aside."""
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
    if abs(cfg.mapping_lr_multiplier - 0.01) > 1e-9:
        problems.append(f"mapping lr multiplier {cfg.mapping_lr_multiplier:g} (rosinality's lr_mlp is 0.01)")
    if not cfg.is_square:
        problems.append("a non-square output")
    if cfg.img_resolution > 2048:
        problems.append(f"resolution {cfg.img_resolution} px")
    return problems


def _channel_multiplier(cfg: GeneratorConfig) -> int | None:
    """The channel_multiplier whose table is ``cfg``'s (2, rosinality's default, when several
    fit, as for networks of 32 px or less), or None."""
    ours = {r: cfg.channels_at(r) for r in cfg.block_resolutions}
    candidates = [m for m in range(1, 65) if rosinality_channels(cfg.img_resolution, m) == ours]
    return (2 if 2 in candidates else candidates[0]) if candidates else None


def unwritable_reason(G) -> str | None:
    """Why rosinality's stock ``Generator`` could not load ``G`` written as a ``.pt`` (the
    problems joined in one phrase), or None when it can: what ``info`` and the app's .pt button
    say."""
    if G.family != "stylegan2":
        return f"a {G.family} network (rosinality .pt files hold StyleGAN2 only)"
    cfg = G.config
    problems = _layout_problems(cfg)
    if not problems and _channel_multiplier(cfg) is None:
        table = ", ".join(f"{r}:{cfg.channels_at(r)}" for r in cfg.block_resolutions)
        problems.append(f"channels {table}, {_CHANNEL_RULE}")
    return "; ".join(problems) or None


def generator_args(cfg: GeneratorConfig, custom_channels: bool = False) -> dict:
    """The arguments of rosinality's ``Generator(size, style_dim, n_mlp, channel_multiplier)``
    that rebuild a generator with this config, so that pSp, e4e, JoJoGAN and rosinality's own
    scripts load the written ``.pt``.  Raises ExportError naming what rosinality's Generator
    cannot express (its only channel knob is ``channel_multiplier``; its mapping learning rate
    ``lr_mlp`` is fixed at 0.01 by those tools).

    ``custom_channels`` accepts any channel table: the file then loads only in a Generator
    whose ``self.channels`` is edited to the table returned under ``"channels"``."""
    args = {"size": cfg.img_resolution, "style_dim": cfg.w_dim, "n_mlp": cfg.mapping_layers}
    problems = _layout_problems(cfg)
    if problems:
        raise ExportError("cannot write a rosinality .pt that its Generator loads: the generator "
                          "has " + "; ".join(problems) + " (save as .pkl or .safetensors)")
    multiplier = _channel_multiplier(cfg)
    if multiplier is not None:
        return {**args, "channel_multiplier": multiplier}
    ours = {r: cfg.channels_at(r) for r in cfg.block_resolutions}
    if custom_channels:
        return {**args, "channel_multiplier": None, "channels": ours}
    table = ", ".join(f"{r}:{c}" for r, c in ours.items())
    raise ExportError("cannot write a rosinality .pt that its Generator loads: the generator has "
                      f"channels {table}, {_CHANNEL_RULE} (save as .pkl or .safetensors; or write it "
                      "anyway with custom channels (--custom-channels), for a Generator whose "
                      "channel table you edit)")


def generator_call(args: dict) -> str:
    """``Generator(256, 512, 8, channel_multiplier=2)``: how rosinality's code builds it."""
    if args.get("channels"):
        table = ", ".join(f"{r}: {c}" for r, c in args["channels"].items())
        return (f"Generator({args['size']}, {args['style_dim']}, {args['n_mlp']}) with its "
                f"self.channels set to {{{table}}}")
    return (f"Generator({args['size']}, {args['style_dim']}, {args['n_mlp']}, "
            f"channel_multiplier={args['channel_multiplier']})")


def _checked_args(G: Generator, custom_channels: bool) -> dict:
    if G.family != "stylegan2":
        raise ExportError(f"cannot write a rosinality .pt: it holds StyleGAN2 generators only, "
                          f"and this is {G.config.architecture} (save as .pkl or .safetensors)")
    return generator_args(G.config, custom_channels)


def from_nvidia(G: Generator, custom_channels: bool = False) -> dict:
    """Our generator as a rosinality ``g_ema`` state dict (exact keys rosinality's Generator has).
    Raises ExportError for what that Generator cannot build (see :func:`generator_args`)."""
    _checked_args(G, custom_channels)
    return _g_ema(G)


def _g_ema(G: Generator) -> dict:
    cfg = G.config
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


ARGS_KEY = "stylemix_rosinality_args"


def save(G: Generator, path: str | os.PathLike, custom_channels: bool = False) -> dict:
    """Write ``G`` as a rosinality checkpoint (``g_ema``, ``latent_avg``); returns the
    ``Generator(...)`` arguments that load it (also stored, for ``info``, under ARGS_KEY).
    Raises ExportError for what rosinality's Generator cannot build (``custom_channels``: see
    :func:`generator_args`)."""
    args = _checked_args(G, custom_channels)
    ckpt = {"g_ema": _g_ema(G),
            "latent_avg": G.mapping.w_avg.detach().to("cpu", torch.float32).clone(),
            "stylemix_config": json.dumps(G.config.to_dict()), ARGS_KEY: json.dumps(args)}
    if G.blend_info:
        ckpt["stylemix_blend"] = json.dumps(G.blend_info)
    with atomic_write(path) as tmp:
        torch.save(ckpt, tmp)
    return args
