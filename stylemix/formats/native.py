"""stylemix's own format: one .safetensors file, the config (and blend recipe, and a transfer's
recommended toonify blend) as JSON metadata.

safetensors holds raw tensors behind a length-checked JSON header, so reading it cannot run
code; it is the fast, safe default for saving blends.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import ModelLoadError
from ..networks import Generator, GeneratorConfig
from ..networks.stylegan3 import StyleGAN3Config
from ..io import atomic_write, file_sha256
from .common import ModelSource, build_generator
from .registry import SAFETENSORS, FileFormat

FORMAT_TAG = "stylemix-generator"
FORMAT_VERSION = "1"


def load(path: str | os.PathLike, device="cpu") -> Generator:
    name = os.path.basename(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT_TAG:
                raise ModelLoadError(
                    f"{name} is a safetensors file but not a stylemix generator (no '{FORMAT_TAG}' metadata)")
            if meta.get("format_version") != FORMAT_VERSION:
                raise ModelLoadError(
                    f"{name} uses stylemix format version {meta.get('format_version')!r}; "
                    f"this stylemix reads version {FORMAT_VERSION}")
            # float16 synthesis weights (save(..., synthesis_dtype=torch.float16)) compute in float32
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            tensors = {k: v.float() if v.dtype == torch.float16 else v for k, v in tensors.items()}
    except SafetensorError as exc:
        raise ModelLoadError(f"{name} is not a readable safetensors file ({exc})") from None
    try:
        config_dict = json.loads(meta["config"])
        if not isinstance(config_dict, dict):
            raise TypeError("config is not a JSON object")
        if config_dict.get("generator") == "stylegan3":
            config = StyleGAN3Config.from_dict(config_dict)
        else:
            config = GeneratorConfig.from_dict(config_dict)
        blend_info = json.loads(meta["blend"]) if meta.get("blend") else None
        toonify_alphas = _alpha_table(meta["toonify_alphas"]) if meta.get("toonify_alphas") else None
    except (KeyError, json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{name} has a malformed stylemix config ({exc})") from None
    G = build_generator(config, tensors, ModelSource("native", os.path.abspath(path),
                                                     file_sha256(path)), device, what=name)
    G.blend_info = blend_info
    G.toonify_alphas = toonify_alphas
    return G


def _alpha_table(text: str) -> dict[int, float]:
    """The ``toonify_alphas`` metadata: a JSON object {"16": 1.0, …} → {16: 1.0, …}."""
    table = json.loads(text)
    if not isinstance(table, dict):
        raise TypeError("toonify_alphas is not a JSON object")
    return {int(r): float(a) for r, a in table.items()}


def save(G: Generator, path: str | os.PathLike, synthesis_dtype: torch.dtype = torch.float32) -> None:
    """Write ``G`` (config and blend recipe as metadata). ``synthesis_dtype=torch.float16``
    halves the file by storing the synthesis network's weights in float16 (rendering changes by
    about 1e-3); the mapping network and buffers stay float32, so z → w is kept exactly.
    Loading always computes in float32."""
    if synthesis_dtype not in (torch.float32, torch.float16):
        raise ValueError(f"synthesis_dtype must be torch.float32 or torch.float16, not {synthesis_dtype}")
    params = {name for name, _ in G.synthesis.named_parameters(prefix="synthesis")}
    tensors = {k: v.detach().to("cpu", synthesis_dtype if k in params else torch.float32).contiguous()
               for k, v in G.state_dict().items()}
    meta = {"format": FORMAT_TAG, "format_version": FORMAT_VERSION,
            "config": json.dumps(G.config.to_dict())}
    if G.blend_info:
        meta["blend"] = json.dumps(G.blend_info)
    if getattr(G, "toonify_alphas", None):
        meta["toonify_alphas"] = json.dumps({str(r): a for r, a in sorted(G.toonify_alphas.items())})
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _load(contents, path, network: str = "G_ema", device="cpu") -> Generator:
    return load(path, device=device)  # one generator per file: network does not apply


FORMAT = FileFormat("native", "stylemix .safetensors", "stylemix safetensors", SAFETENSORS, (".safetensors",),
                    load=_load, save=save)
