"""Read the geometry of an NVIDIA StyleGAN3 generator record into a :class:`StyleGAN3Config`.

The stylegan3 repository stores each layer's sizes, sampling rates, filter taps and paddings as
plain attributes of the pickled module (numpy scalars and arrays); we take them from there, check
they add up, and never run the pickle's stored source.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..errors import ModelLoadError
from ..networks.stylegan3 import InputSpec, LayerSpec, StyleGAN3Config
from .nvidia_kwargs import mapping_options
from .safe_pickle import PersistentRecord

_LAYER_NAME = re.compile(r"L\d+_\d+_\d+")


def is_stylegan3(record: PersistentRecord) -> bool:
    synthesis = record.children().get("synthesis")
    names = set(synthesis.children()) if isinstance(synthesis, PersistentRecord) else set()
    return "input" in names and any(_LAYER_NAME.fullmatch(n) for n in names)


def _int(value, what: str) -> int:
    try:
        arr = np.asarray(value)
        if arr.size != 1 or not float(arr.item()).is_integer():
            raise ValueError
        return int(arr.item())
    except (TypeError, ValueError, OverflowError):
        raise ModelLoadError(f"{what} is not an integer ({value!r})") from None


def _float(value, what: str) -> float:
    try:
        out = float(np.asarray(value).item())
    except (TypeError, ValueError):
        raise ModelLoadError(f"{what} is not a number ({value!r})") from None
    if not math.isfinite(out):
        raise ModelLoadError(f"{what} is not finite")
    return out


def _size(value, what: str) -> list[int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2:
        raise ModelLoadError(f"{what} is not a 2-D size ({value!r})")
    return [_int(v, what) for v in arr]


def _attr(state: dict, key: str, what: str):
    if key not in state:
        raise ModelLoadError(f"{what} lacks its '{key}' attribute")
    return state[key]


def _layer_spec(name: str, record: PersistentRecord) -> LayerSpec:
    st, what = record.state, f"StyleGAN3 layer {name}"
    get = lambda key: _attr(st, key, what)  # noqa: E731
    padding = get("padding")
    if not isinstance(padding, (list, tuple)) or len(padding) != 4:
        raise ModelLoadError(f"{what} has a malformed padding ({padding!r})")
    clamp = st.get("conv_clamp")
    return LayerSpec(
        name=name, in_channels=_int(get("in_channels"), what), out_channels=_int(get("out_channels"), what),
        in_size=_size(get("in_size"), what), out_size=_size(get("out_size"), what),
        in_sampling_rate=_float(get("in_sampling_rate"), what),
        out_sampling_rate=_float(get("out_sampling_rate"), what),
        is_torgb=bool(get("is_torgb")), conv_kernel=_int(get("conv_kernel"), what),
        up_factor=_int(get("up_factor"), what), up_taps=_int(get("up_taps"), what),
        down_factor=_int(get("down_factor"), what), down_taps=_int(get("down_taps"), what),
        down_radial=bool(get("down_radial")), padding=[_int(p, what) for p in padding],
        conv_clamp=None if clamp is None else _float(clamp, what))


def config_from_record(record: PersistentRecord) -> StyleGAN3Config:
    """The generator's full geometry from its pickled record (init kwargs + stored attributes)."""
    kwargs = record.init_kwargs
    try:
        base = {k: _int(kwargs[k], f"generator '{k}'")
                for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    except KeyError as exc:
        raise ModelLoadError(f"StyleGAN3 generator record lacks init argument {exc}") from None
    mapping = mapping_options(kwargs.get("mapping_kwargs"), "StyleGAN3 ")
    synthesis = record.children()["synthesis"]
    sst = synthesis.state
    names = _attr(sst, "layer_names", "StyleGAN3 synthesis network")
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ModelLoadError("StyleGAN3 synthesis network has malformed layer names")
    children = synthesis.children()
    missing = [n for n in names if not isinstance(children.get(n), PersistentRecord)]
    if missing:
        raise ModelLoadError(f"StyleGAN3 synthesis network lacks layer {missing[0]}")
    inp = children.get("input")
    if not isinstance(inp, PersistentRecord):
        raise ModelLoadError("StyleGAN3 synthesis network lacks its input layer")
    ist = inp.state
    input_spec = InputSpec(channels=_int(_attr(ist, "channels", "StyleGAN3 input"), "input channels"),
                           size=_size(_attr(ist, "size", "StyleGAN3 input"), "input size"),
                           sampling_rate=_float(_attr(ist, "sampling_rate", "StyleGAN3 input"), "input rate"),
                           bandwidth=_float(_attr(ist, "bandwidth", "StyleGAN3 input"), "input bandwidth"))
    options = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in kwargs.items()
               if k not in base and k != "mapping_kwargs" and isinstance(v, (int, float, bool, str, np.generic, type(None)))}
    return StyleGAN3Config(
        **base, **mapping, input=input_spec, layers=[_layer_spec(n, children[n]) for n in names],
        output_scale=_float(sst.get("output_scale", 1.0), "output_scale"),
        use_radial_filters=bool(kwargs.get("use_radial_filters", False)), options=options)
