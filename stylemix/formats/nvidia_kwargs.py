"""NVIDIA's constructor arguments (a pickled network's ``init_kwargs``) → stylemix configs.

stylegan2-ada-pytorch and the stylegan3 repository record how each network was built as the
keyword arguments of its constructor: ``z_dim``, ``c_dim``, ``w_dim``, ``img_resolution``,
``img_channels``, then ``mapping_kwargs`` and ``synthesis_kwargs`` (the stylegan3 repository
passes synthesis options at the top level) for G, ``block_kwargs``, ``mapping_kwargs`` and
``epilogue_kwargs`` for D. This module is the one place that knows those names; the networks
only know their own config records. Options we do not implement are refused by name, options
that change only speed or memory layout are ignored.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ModelLoadError, UnsupportedModelError
from ..networks.config import GeneratorConfig
from ..networks.discriminator import DiscriminatorConfig

# NVIDIA mapping_kwargs → our config fields (StyleGAN2 and StyleGAN3 share the mapping network).
MAPPING_KEYS = {"num_layers": "mapping_layers", "embed_features": "embed_features",
                "layer_features": "layer_features", "activation": "mapping_activation",
                "lr_multiplier": "mapping_lr_multiplier", "w_avg_beta": "w_avg_beta"}
SYNTHESIS_KEYS = {"channel_base": "channel_base", "channel_max": "channel_max",
                  "num_fp16_res": "num_fp16_res", "conv_clamp": "conv_clamp",
                  "architecture": "architecture", "resample_filter": "resample_filter",
                  "use_noise": "use_noise", "activation": "synthesis_activation",
                  "kernel_size": "kernel_size"}
# Options that change speed or memory layout only, never the result.
_IGNORED_SYNTHESIS = {"fp16_channels_last", "fused_modconv_default", "channels_last"}
_IGNORED_DISCRIMINATOR = {"freeze_layers", "fp16_channels_last", "channels_last"}


def mapping_options(mapping_kwargs, family: str = "") -> dict[str, Any]:
    """Our mapping-network config fields from NVIDIA's ``mapping_kwargs`` (either family);
    ``family`` ("StyleGAN3 ") prefixes the error for an unsupported option."""
    out = {}
    for key, value in dict(mapping_kwargs or {}).items():
        if key not in MAPPING_KEYS:
            raise UnsupportedModelError(f"{family}mapping option '{key}' is not supported")
        out[MAPPING_KEYS[key]] = value
    return out


def generator_config(kwargs: dict[str, Any]) -> GeneratorConfig:
    """The config of an NVIDIA stylegan2-ada-pytorch / stylegan3-repository StyleGAN2 Generator."""
    kwargs = dict(kwargs)
    try:
        out: dict[str, Any] = {k: int(kwargs.pop(k)) for k in
                               ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    except KeyError as exc:
        raise ModelLoadError(f"generator record lacks init argument {exc}") from None
    out.update(mapping_options(kwargs.pop("mapping_kwargs", None)))
    synthesis = dict(kwargs.pop("synthesis_kwargs", None) or {})
    synthesis.update(kwargs)  # the stylegan3 repo passes synthesis options at top level
    for key, value in synthesis.items():
        if key in _IGNORED_SYNTHESIS:
            continue
        if key not in SYNTHESIS_KEYS:
            raise UnsupportedModelError(f"synthesis option '{key}' is not supported")
        out[SYNTHESIS_KEYS[key]] = value
    if "resample_filter" in out:
        out["resample_filter"] = [int(v) for v in out["resample_filter"]]
    return GeneratorConfig(**out)


def discriminator_config(kwargs: dict[str, Any]) -> DiscriminatorConfig:
    """The config of an NVIDIA stylegan2-ada-pytorch Discriminator."""
    kwargs = dict(kwargs)
    block = dict(kwargs.pop("block_kwargs", None) or {})
    epilogue = dict(kwargs.pop("epilogue_kwargs", None) or {})
    mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
    fields = {f.name for f in dataclasses.fields(DiscriminatorConfig)}
    out = dict(kwargs)
    for key, value in {**block, **epilogue}.items():
        if key in _IGNORED_DISCRIMINATOR:
            continue
        if key not in fields:
            raise UnsupportedModelError(f"discriminator option '{key}' is not supported")
        out[key] = value
    unknown = set(out) - fields
    if unknown:
        raise UnsupportedModelError(f"discriminator option '{sorted(unknown)[0]}' is not supported")
    return DiscriminatorConfig(mapping_kwargs=mapping, **out)
