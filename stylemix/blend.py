"""Resolution-dependent interpolation of two generators ("layer swapping").

A blend gives every synthesis block r a weight α_r and composes

    θ_r = (1 - α_r) · θ_base + α_r · θ_transfer

so α = 0 is the base model and α = 1 the transferred one.  Every parameter of block ``b{r}``
(its const, convolutions, noise strengths and torgb) follows α_r; the mapping network and w_avg
follow a separate ``mapping`` weight (base by default, as in the paper).  Noise maps are
buffers, not learned: they are never averaged (that would shrink their variance) but taken from
whichever model dominates the block (transfer when α_r > 0.5).  For StyleGAN3 the α groups are
sampling rates instead of blocks.

Channel-dependent α (the paper's "further work") refines one resolution further: chosen
output channels of that block's feature maps (the rows of its convolution weights and biases,
and of the 4×4 const) take their own α, so a single feature can come from the other model.
The block's styles (affine), noise strengths and torgb keep the block's α.

This module holds the recipe (:class:`BlendSpec`) and the one-call functions; the rules that
turn a recipe into weights live in :mod:`stylemix.blend_plan`, shared with the live engine and
the batched renderer.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Mapping

from .blend_plan import BlendPlan, check_channel_support, check_compatible, mapping_difference
from .errors import BlendSpecError
from .networks.generator import StyleGenerator

KINDS = ("swap", "linear", "smooth", "per_resolution")
_NEEDS = {"swap": ("r_swap",), "linear": ("alpha",), "smooth": ("centre", "width"), "per_resolution": ()}


def _parse_mapping(mapping) -> float:
    named = {"base": 0.0, "transfer": 1.0, "blend": 0.5}
    if isinstance(mapping, str):
        if mapping in named:
            return named[mapping]
        try:
            mapping = float(mapping)
        except ValueError:
            raise BlendSpecError(
                f"mapping must be 'base', 'transfer', 'blend' or a number, not {mapping!r}") from None
    return _finite(mapping, "mapping weight")


def _finite(value, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise BlendSpecError(f"{what} must be a number, not {value!r}") from None
    if not math.isfinite(value):
        raise BlendSpecError(f"{what} must be finite")
    return value


def _integer(value, what: str) -> int:
    try:
        if isinstance(value, bool) or not float(value).is_integer():
            raise ValueError
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise BlendSpecError(f"{what} must be a whole number, not {value!r}") from None


def _group(value, what: str = "resolution") -> int:
    """An α group's size in pixels: a power of two ≥ 4."""
    res = _integer(value, what)
    if res < 4 or not math.log2(res).is_integer():
        raise BlendSpecError(f"{what} {res} is not a power of two ≥ 4")
    return res


@dataclass(frozen=True)
class BlendSpec:
    """How much of the transferred model each resolution takes. Build with the class methods;
    every way of making one (constructors, :meth:`from_dict`, ``dataclasses.replace``) is
    checked here, so a spec that exists is valid. Raises BlendSpecError otherwise."""

    kind: str
    r_swap: int | None = None
    low: str = "transfer"
    alpha: float | None = None
    centre: float | None = None
    width: float | None = None
    table: tuple[tuple[int, float], ...] = field(default_factory=tuple)
    mapping: float = 0.0  # 0 = mapping network and w_avg from base, 1 = from transfer
    channel_table: tuple[tuple[int, int, float], ...] = field(default_factory=tuple)  # (res, channel, α)

    def __post_init__(self):
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        if self.kind not in KINDS:
            raise BlendSpecError(f"unknown blend kind {self.kind!r} (choose from {', '.join(KINDS)})")
        for name in ("r_swap", "alpha", "centre", "width"):
            given = getattr(self, name) is not None
            if given != (name in _NEEDS[self.kind]):
                raise BlendSpecError(f"a {self.kind} blend {'takes no' if given else 'needs'} {name}")
        if self.table and self.kind != "per_resolution":
            raise BlendSpecError(f"a {self.kind} blend takes no per-resolution table")
        if self.low not in ("base", "transfer"):
            raise BlendSpecError(f"low must be 'base' or 'transfer', not {self.low!r}")
        put("mapping", _parse_mapping(self.mapping))
        if self.kind == "swap":
            put("r_swap", _group(self.r_swap, "r_swap"))
        elif self.kind == "linear":
            put("alpha", _finite(self.alpha, "alpha"))
        elif self.kind == "smooth":
            centre, width = _finite(self.centre, "smooth centre"), _finite(self.width, "smooth width")
            if centre <= 0:
                raise BlendSpecError(f"smooth centre must be a positive resolution, not {centre:g}")
            if width <= 0:
                raise BlendSpecError(f"smooth width must be > 0 octaves (use swap for a hard step), not {width:g}")
            put("centre", centre)
            put("width", width)
        table = {}
        for item in self.table:
            res, alpha = _pair(item, 2, "per-resolution entry")
            res = _group(res)
            if res in table:
                raise BlendSpecError(f"α given twice for {res} px")
            table[res] = _finite(alpha, f"alpha for {res} px")
        put("table", tuple(sorted(table.items())))
        channels = {}
        for item in self.channel_table:
            res, channel, alpha = _pair(item, 3, "channel entry")
            res, channel = _group(res), _integer(channel, "channel")
            if channel < 0:
                raise BlendSpecError(f"channel {channel} is negative")
            if (res, channel) in channels:
                raise BlendSpecError(f"channel {channel} of {res} px is given twice")
            channels[(res, channel)] = _finite(alpha, "channel alpha")
        put("channel_table", tuple(sorted((r, c, a) for (r, c), a in channels.items())))

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def swap(cls, r_swap: int, low: str = "transfer", mapping="base") -> "BlendSpec":
        """The paper's layer swap: resolutions ≤ r_swap from ``low``, the rest from the other."""
        return cls("swap", r_swap=r_swap, low=low, mapping=mapping)

    @classmethod
    def linear(cls, alpha: float, mapping="base") -> "BlendSpec":
        """The same α at every resolution (plain weight interpolation of the synthesis network)."""
        return cls("linear", alpha=alpha, mapping=mapping)

    @classmethod
    def smooth(cls, centre: float, width: float, low: str = "transfer", mapping="base") -> "BlendSpec":
        """A logistic ramp over log2(resolution): α = ½ at ``centre`` px, ``width`` in octaves."""
        return cls("smooth", centre=centre, width=width, low=low, mapping=mapping)

    @classmethod
    def per_resolution(cls, alphas: Mapping[int, float], mapping="base") -> "BlendSpec":
        """Explicit α per resolution; resolutions not listed take 0 (base)."""
        return cls("per_resolution", table=tuple(dict(alphas).items()), mapping=mapping)

    def with_channels(self, resolution: int, channels, alpha: float) -> "BlendSpec":
        """This spec, with ``channels`` of block ``resolution`` set to their own ``alpha``."""
        resolution = _group(resolution)
        chosen = sorted({_integer(c, "channel") for c in channels})
        if not chosen:
            raise BlendSpecError(f"no channels given for {resolution} px")
        keep = [t for t in self.channel_table if not (t[0] == resolution and t[1] in chosen)]
        return dataclasses.replace(self, channel_table=tuple(keep + [(resolution, c, alpha) for c in chosen]))

    def channel_alphas(self) -> dict[int, dict[int, float]]:
        """{resolution: {channel: α}} for the channels that differ from their block's α."""
        out: dict[int, dict[int, float]] = {}
        for res, channel, alpha in self.channel_table:
            out.setdefault(res, {})[channel] = alpha
        return out

    # -- evaluation ---------------------------------------------------------------------------
    def alphas(self, groups: list[int]) -> dict[int, float]:
        """α for each α group (block resolution, or StyleGAN3 sampling rate) of a concrete model."""
        if self.kind == "swap":
            low_alpha = 1.0 if self.low == "transfer" else 0.0
            return {r: low_alpha if r <= self.r_swap else 1.0 - low_alpha for r in groups}
        if self.kind == "linear":
            return {r: self.alpha for r in groups}
        if self.kind == "smooth":
            out = {}
            for r in groups:
                rise = 1 / (1 + math.exp(-(math.log2(r) - math.log2(self.centre)) / self.width))
                out[r] = 1 - rise if self.low == "transfer" else rise
            return out
        table = dict(self.table)
        unknown = sorted(set(table) - set(groups))
        if unknown:
            raise BlendSpecError(
                f"α given for {unknown[0]} px, but the models' resolutions are "
                f"{', '.join(map(str, groups))}")
        return {r: table.get(r, 0.0) for r in groups}

    def _describe_resolutions(self) -> str:
        tail = "" if self.mapping == 0 else f"-map{_num(self.mapping)}"
        if self.kind == "swap":
            return f"swap{self.r_swap}-low{self.low[0].upper()}{tail}"
        if self.kind == "linear":
            return f"alpha{_num(self.alpha)}{tail}"
        if self.kind == "smooth":
            return f"smooth{_num(self.centre)}w{_num(self.width)}-low{self.low[0].upper()}{tail}"
        return "res" + ("_".join(f"{r}-{_num(a)}" for r, a in self.table) or "-base") + tail

    def describe(self) -> str:
        """Short, file-name-safe label, e.g. ``swap16-lowT``, ``alpha0.5``, ``res4-1_8-0.5``;
        channel overrides add ``-ch16x3`` (3 channels of 16 px have their own α)."""
        channels = "".join(f"-ch{r}x{len(c)}" for r, c in self.channel_alphas().items())
        return self._describe_resolutions() + channels

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if v is not None and v != ()}
        if self.table:
            d["table"] = [list(t) for t in self.table]
        if self.channel_table:
            d["channel_table"] = [list(t) for t in self.channel_table]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "BlendSpec":
        """The inverse of :meth:`to_dict` (e.g. a recipe read back from a file), checked."""
        if not isinstance(d, Mapping):
            raise BlendSpecError(f"a blend spec must be a dict, not {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(map(str, d)) - known)
        if unknown:
            raise BlendSpecError(f"unknown blend spec field {unknown[0]!r}")
        if "kind" not in d:
            raise BlendSpecError("a blend spec needs a kind")
        d = dict(d)
        for name in ("table", "channel_table"):
            if name in d and not isinstance(d[name], (list, tuple)):
                raise BlendSpecError(f"{name} must be a list, not {type(d[name]).__name__}")
        return cls(**d)


def _pair(item, size: int, what: str) -> tuple:
    if not isinstance(item, (list, tuple)) or len(item) != size:
        raise BlendSpecError(f"a {what} must have {size} values, not {item!r}")
    return tuple(item)


def _num(x: float) -> str:
    return f"{x:g}"


def blend(G_base: StyleGenerator, G_transfer: StyleGenerator, spec: BlendSpec) -> StyleGenerator:
    """A new generator: ``G_base``'s architecture with weights blended per ``spec``.

    The result keeps the base's provenance, so ``stylemix.save(B, "x.pkl")`` writes an NVIDIA
    pickle when the base came from one — unless its mapping network is the transfer's and has
    another shape than base's (another depth, a class embedding): then the transfer's file is
    the template that fits. Raises IncompatibleModelsError when the synthesis networks differ,
    BlendSpecError when the spec does not fit the models (or asks to mix unequal mapping networks).
    """
    if not isinstance(spec, BlendSpec):
        raise BlendSpecError("spec must be a stylemix.BlendSpec (e.g. BlendSpec.swap(16))")
    plan = BlendPlan(G_base, [G_transfer])
    weights = plan.weights(spec)
    out = plan.generator(weights)
    out.blend_info = {"spec": spec.to_dict(), "alphas": {str(r): w[0] for r, w in weights.groups.items()},
                      "label": spec.describe(),
                      "transfer": getattr(G_transfer.source, "path", None)}
    return out


def blend_many(G_base: StyleGenerator, transfers: list[StyleGenerator], specs: list[BlendSpec],
               mapping: int | None = None) -> StyleGenerator:
    """Blend several models fine-tuned from one base, each with its own per-resolution weights.

    θ_r = θ_base + Σ_i α_{i,r} (θ_i − θ_base): e.g. structure from one model, colours from
    another, texture from base. ``mapping`` is the index of the transfer whose mapping network
    (and w_avg) to use, or None for base's. A block's noise maps come from whichever model weighs
    most there (base weighs 1 − Σ α; a tie goes to base, then to the earlier model), which for
    one model is ``blend``'s "transfer when α > 0.5".
    """
    if len(transfers) != len(specs) or not transfers:
        raise BlendSpecError("give one blend spec per transferred model")
    if not all(isinstance(spec, BlendSpec) for spec in specs):
        raise BlendSpecError("specs must be stylemix.BlendSpec objects (e.g. BlendSpec.swap(16))")
    plan = BlendPlan(G_base, transfers)
    out = plan.generator(plan.weights_many(specs, mapping))
    out.blend_info = {"label": "+".join(spec.describe() for spec in specs),
                      "specs": [spec.to_dict() for spec in specs], "mapping": mapping,
                      "transfers": [getattr(G.source, "path", None) for G in transfers]}
    return out


__all__ = ["BlendSpec", "KINDS", "blend", "blend_many", "check_channel_support", "check_compatible",
           "mapping_difference"]
