"""What every format shares: where a generator came from, building it from a state dict, and
finding the pickle a generator is written into. (Generic file helpers live in stylemix.io.)"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ExportError, ModelLoadError
from ..io import file_sha256
from ..networks import Generator, GeneratorConfig
from ..networks.stylegan3 import Generator3, StyleGAN3Config


@dataclass(frozen=True)
class ModelSource:
    """Provenance of a loaded generator; NVIDIA export uses it to find its template file."""

    format: str               # the reader that loaded it: "nvidia_pkl", "tf_pkl", "rosinality" or "native"
    path: str
    sha256: str
    network: str | None = None  # which network of an NVIDIA pickle ("G_ema" or "G")


def build_generator(config: GeneratorConfig | StyleGAN3Config, tensors: dict[str, torch.Tensor],
                    source: ModelSource | None, device: str | torch.device = "cpu",
                    what: str = "the file") -> Generator:
    """Instantiate our network for ``config`` and fill it, naming the first thing that does not fit."""
    G = Generator3(config) if isinstance(config, StyleGAN3Config) else Generator(config)
    expected = G.state_dict()
    for name, value in expected.items():
        if name not in tensors:
            raise ModelLoadError(f"{what} lacks parameter '{name}' that this architecture needs")
        got = tuple(tensors[name].shape)
        if got != tuple(value.shape):
            raise ModelLoadError(
                f"parameter '{name}' has shape {list(got)} in {what}, "
                f"but the stored config implies {list(value.shape)}")
    extra = [name for name in tensors if name not in expected]
    if extra:
        raise ModelLoadError(f"{what} holds parameter '{extra[0]}' that this architecture lacks"
                             + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    with torch.no_grad():
        for name, value in expected.items():
            t = tensors[name]
            if not (t.is_floating_point() and torch.isfinite(t).all()):
                raise ModelLoadError(f"parameter '{name}' in {what} is not finite floating point")
            value.copy_(t.to(value.dtype))
    G.source = source
    return G.eval().requires_grad_(False).to(device)


def template_for(G, kind: str, template: str | os.PathLike | None, default_network: str,
                 needs: str) -> tuple[str, str]:
    """(template file, network name) for writing ``G`` into a pickle of ``kind``: the given
    ``template``, else the file G (or its blend base) was loaded from, checked unchanged."""
    if template is not None:
        if not Path(template).is_file():
            raise ExportError(f"no such template file: {Path(template).name}")
        return str(template), default_network
    src = G.source
    if src is None or src.format != kind:
        origin = "a file" if src is None else f"a {src.format} file"
        raise ExportError(
            f"cannot write {needs}: this generator comes from {origin}, and {needs} needs "
            f"{needs} as its template (blend with one as the base, pass --template FILE, or "
            "save as .safetensors or .pt instead)")
    if not os.path.exists(src.path) or file_sha256(src.path) != src.sha256:
        raise ExportError(f"the template {Path(src.path).name} has changed or gone since it was "
                          "loaded; load the models again before exporting")
    return src.path, src.network or default_network
