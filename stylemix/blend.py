"""Resolution-dependent interpolation of two generators ("layer swapping").

A blend gives every synthesis block r a weight α_r and composes

    θ_r = (1 - α_r) · θ_base + α_r · θ_transfer

so α = 0 is the base model and α = 1 the transferred one.  Every parameter of block ``b{r}``
(its const, convolutions, noise strengths and torgb) follows α_r; the mapping network and w_avg
follow a separate ``mapping`` weight (base by default, as in the paper).  Noise maps are
buffers, not learned: they are never averaged (that would shrink their variance) but taken from
whichever model dominates the block (transfer when α_r > 0.5).

Channel-dependent α (the paper's "further work") refines one resolution further: chosen
output channels of that block's feature maps (the rows of its convolution weights and biases,
and of the 4×4 const) take their own α, so a single feature can come from the other model.
The block's styles (affine), noise strengths and torgb keep the block's α.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Mapping

import torch

from .errors import BlendSpecError, IncompatibleModelsError
from .networks import Generator
from .networks.generator import is_channel_tensor, resolution_of



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
    if not math.isfinite(float(mapping)):
        raise BlendSpecError("mapping weight must be finite")
    return float(mapping)


def _check_low(low: str) -> str:
    if low not in ("base", "transfer"):
        raise BlendSpecError(f"low must be 'base' or 'transfer', not {low!r}")
    return low


@dataclass(frozen=True)
class BlendSpec:
    """How much of the transferred model each resolution takes. Build with the class methods."""

    kind: str
    r_swap: int | None = None
    low: str = "transfer"
    alpha: float | None = None
    centre: float | None = None
    width: float | None = None
    table: tuple[tuple[int, float], ...] = field(default_factory=tuple)
    mapping: float = 0.0  # 0 = mapping network and w_avg from base, 1 = from transfer
    channel_table: tuple[tuple[int, int, float], ...] = field(default_factory=tuple)  # (res, channel, α)

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def swap(cls, r_swap: int, low: str = "transfer", mapping="base") -> "BlendSpec":
        """The paper's layer swap: resolutions ≤ r_swap from ``low``, the rest from the other."""
        r_swap = int(r_swap)
        if r_swap < 4 or not math.log2(r_swap).is_integer():
            raise BlendSpecError(f"r_swap must be a power of two ≥ 4, not {r_swap}")
        return cls("swap", r_swap=r_swap, low=_check_low(low), mapping=_parse_mapping(mapping))

    @classmethod
    def linear(cls, alpha: float, mapping="base") -> "BlendSpec":
        """The same α at every resolution (plain weight interpolation of the synthesis network)."""
        alpha = float(alpha)
        if not math.isfinite(alpha):
            raise BlendSpecError("alpha must be finite")
        return cls("linear", alpha=alpha, mapping=_parse_mapping(mapping))

    @classmethod
    def smooth(cls, centre: float, width: float, low: str = "transfer", mapping="base") -> "BlendSpec":
        """A logistic ramp over log2(resolution): α = ½ at ``centre`` px, ``width`` in octaves."""
        centre, width = float(centre), float(width)
        if not (centre > 0 and math.isfinite(centre)):
            raise BlendSpecError(f"smooth centre must be a positive resolution, not {centre}")
        if not (width > 0 and math.isfinite(width)):
            raise BlendSpecError(f"smooth width must be > 0 octaves (use swap for a hard step), not {width}")
        return cls("smooth", centre=centre, width=width, low=_check_low(low),
                   mapping=_parse_mapping(mapping))

    @classmethod
    def per_resolution(cls, alphas: Mapping[int, float], mapping="base") -> "BlendSpec":
        """Explicit α per resolution; resolutions not listed take 0 (base)."""
        table = []
        for res, alpha in dict(alphas).items():
            res, alpha = int(res), float(alpha)
            if res < 4 or not math.log2(res).is_integer():
                raise BlendSpecError(f"resolution {res} is not a power of two ≥ 4")
            if not math.isfinite(alpha):
                raise BlendSpecError(f"alpha for {res} px must be finite")
            table.append((res, alpha))
        return cls("per_resolution", table=tuple(sorted(table)), mapping=_parse_mapping(mapping))

    def with_channels(self, resolution: int, channels, alpha: float) -> "BlendSpec":
        """This spec, with ``channels`` of block ``resolution`` set to their own ``alpha``."""
        resolution, alpha = int(resolution), float(alpha)
        if resolution < 4 or not math.log2(resolution).is_integer():
            raise BlendSpecError(f"resolution {resolution} is not a power of two ≥ 4")
        if not math.isfinite(alpha):
            raise BlendSpecError("channel alpha must be finite")
        chosen = sorted({int(c) for c in channels})
        if not chosen:
            raise BlendSpecError(f"no channels given for {resolution} px")
        if chosen[0] < 0:
            raise BlendSpecError(f"channel {chosen[0]} is negative")
        keep = [t for t in self.channel_table if not (t[0] == resolution and t[1] in chosen)]
        table = tuple(sorted(keep + [(resolution, c, alpha) for c in chosen]))
        return dataclasses.replace(self, channel_table=table)

    def channel_alphas(self) -> dict[int, dict[int, float]]:
        """{resolution: {channel: α}} for the channels that differ from their block's α."""
        out: dict[int, dict[int, float]] = {}
        for res, channel, alpha in self.channel_table:
            out.setdefault(res, {})[channel] = alpha
        return out

    # -- evaluation ---------------------------------------------------------------------------
    def alphas(self, resolutions: list[int]) -> dict[int, float]:
        """α for each block resolution of a concrete model."""
        if self.kind == "swap":
            low_alpha = 1.0 if self.low == "transfer" else 0.0
            return {r: low_alpha if r <= self.r_swap else 1.0 - low_alpha for r in resolutions}
        if self.kind == "linear":
            return {r: self.alpha for r in resolutions}
        if self.kind == "smooth":
            out = {}
            for r in resolutions:
                rise = 1 / (1 + math.exp(-(math.log2(r) - math.log2(self.centre)) / self.width))
                out[r] = 1 - rise if self.low == "transfer" else rise
            return out
        if self.kind == "per_resolution":
            table = dict(self.table)
            unknown = sorted(set(table) - set(resolutions))
            if unknown:
                raise BlendSpecError(
                    f"α given for {unknown[0]} px, but the models' resolutions are "
                    f"{', '.join(map(str, resolutions))}")
            return {r: table.get(r, 0.0) for r in resolutions}
        raise BlendSpecError(f"unknown blend kind {self.kind!r}")

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
    def from_dict(cls, d: dict) -> "BlendSpec":
        d = dict(d)
        d["table"] = tuple(tuple(t) for t in d.get("table", ()))
        d["channel_table"] = tuple((int(r), int(c), float(a)) for r, c, a in d.get("channel_table", ()))
        return cls(**d)


def _num(x: float) -> str:
    return f"{x:g}"


def check_compatible(G_base: Generator, G_transfer: Generator) -> None:
    """Raise IncompatibleModelsError naming the first parameter the two models do not share."""
    if G_base.config.architecture != G_transfer.config.architecture:
        family = {"stylegan2": "StyleGAN2", "stylegan3": "StyleGAN3"}
        raise IncompatibleModelsError(
            f"cannot blend a {family[G_base.family]} '{G_base.config.architecture}' generator with "
            f"a {family[G_transfer.family]} '{G_transfer.config.architecture}' one: blend models "
            "fine-tuned from one another")
    a, b = G_base.state_dict(), G_transfer.state_dict()
    sizes = f"(base {G_base.img_resolution} px, transfer {G_transfer.img_resolution} px)"
    for name in list(a) + [n for n in b if n not in a]:
        if name not in b:
            raise IncompatibleModelsError(f"cannot blend: '{name}' exists in base but not in transfer {sizes}")
        if name not in a:
            raise IncompatibleModelsError(f"cannot blend: '{name}' exists in transfer but not in base {sizes}")
        if a[name].shape != b[name].shape:
            raise IncompatibleModelsError(
                f"cannot blend: '{name}' has shape {list(a[name].shape)} in base but "
                f"{list(b[name].shape)} in transfer")


def check_channel_support(G: Generator, channels) -> None:
    """Channel α needs feature maps shared by a whole resolution: StyleGAN2 blocks have them."""
    if channels and not G.supports_channel_alpha:
        raise BlendSpecError(f"channel α works with StyleGAN2 models only; this pair is "
                             f"{G.config.architecture} (blend it by sampling rate instead)")


def channel_alpha_vector(block_alpha: float, overrides: Mapping[int, float], channels: int,
                         name: str = "") -> torch.Tensor:
    """α per output channel: the block's α, except where ``overrides`` say otherwise."""
    bad = [c for c in overrides if not 0 <= c < channels]
    if bad:
        raise BlendSpecError(f"channel {bad[0]} does not exist: {name or 'the block'} has "
                             f"{channels} channels (0-{channels - 1})")
    vec = torch.full([channels], float(block_alpha))
    for c, alpha in overrides.items():
        vec[c] = alpha
    return vec


def blend_state(base: Mapping[str, torch.Tensor], transfer: Mapping[str, torch.Tensor],
                alphas: Mapping[int, float], mapping_alpha: float,
                buffers: set[str] = frozenset(),
                channel_alphas: Mapping[int, Mapping[int, float]] | None = None,
                layout: Generator | None = None) -> dict[str, torch.Tensor]:
    """Per-parameter interpolation; ``buffers`` are picked (α > 0.5 → transfer), not averaged.
    ``channel_alphas`` ({res: {channel: α}}) overrides α for single output channels.
    ``layout`` is a generator of the models' family that says which group each tensor follows
    (StyleGAN2 block names when omitted)."""
    group_of = layout.resolution_of if layout is not None else resolution_of
    channel_tensor = layout.is_channel_tensor if layout is not None else is_channel_tensor
    out = {}
    channel_alphas = channel_alphas or {}
    unknown = sorted(set(channel_alphas) - set(alphas))
    if unknown:
        raise BlendSpecError(f"channel α given for {unknown[0]} px, but the models' resolutions "
                             f"are {', '.join(map(str, sorted(alphas)))}")
    for name, a in base.items():
        b = transfer[name].to(a.device)
        res = group_of(name)
        alpha = mapping_alpha if res is None else alphas[res]
        if res in channel_alphas and channel_tensor(name):
            vec = channel_alpha_vector(alpha, channel_alphas[res], a.shape[0], name)
            vec = vec.to(a.device, a.dtype).reshape(-1, *[1] * (a.ndim - 1))
            out[name] = a + vec * (b - a)
            continue
        if name in buffers:
            out[name] = (b if alpha > 0.5 else a).clone()
        elif alpha == 0:
            out[name] = a.clone()
        elif alpha == 1:
            out[name] = b.clone()
        else:
            out[name] = torch.lerp(a, b, alpha)
    return out


def blend(G_base: Generator, G_transfer: Generator, spec: BlendSpec) -> Generator:
    """A new generator: ``G_base``'s architecture with weights blended per ``spec``.

    The result keeps the base's provenance, so ``stylemix.save(B, "x.pkl")`` writes an NVIDIA
    pickle when the base came from one.
    """
    if not isinstance(spec, BlendSpec):
        raise BlendSpecError("spec must be a stylemix.BlendSpec (e.g. BlendSpec.swap(16))")
    check_compatible(G_base, G_transfer)
    check_channel_support(G_base, spec.channel_table)
    alphas = spec.alphas(G_base.block_resolutions)
    buffers = {name for name, _ in G_base.named_buffers() if G_base.is_picked(name)}
    mapping_alpha = spec.mapping
    state = blend_state(G_base.state_dict(), G_transfer.state_dict(), alphas, mapping_alpha,
                        buffers=buffers, channel_alphas=spec.channel_alphas(), layout=G_base)
    out = copy.deepcopy(G_base)
    out.load_state_dict(state)
    if mapping_alpha not in (0.0, 1.0):
        out.estimate_w_avg()  # a blended mapping network has its own mean w; lerp would be off
    out.blend_info = {"spec": spec.to_dict(), "alphas": {str(r): a for r, a in alphas.items()},
                      "label": spec.describe(),
                      "transfer": getattr(G_transfer.source, "path", None)}
    return out


def blend_many(G_base: Generator, transfers: list[Generator], specs: list[BlendSpec],
               mapping: int | None = None) -> Generator:
    """Blend several models fine-tuned from one base, each with its own per-resolution weights.

    θ_r = θ_base + Σ_i α_{i,r} (θ_i − θ_base): e.g. structure from one model, colours from
    another, texture from base. ``mapping`` is the index of the transfer whose mapping network
    (and w_avg) to use, or None for base's. A block's noise maps come from whichever model weighs
    most there (base weighs 1 − Σ α).
    """
    if len(transfers) != len(specs) or not transfers:
        raise BlendSpecError("give one blend spec per transferred model")
    if any(spec.channel_table for spec in specs):
        raise BlendSpecError("channel α is supported for two-model blends only")
    if mapping is not None and not 0 <= mapping < len(transfers):
        raise BlendSpecError(f"mapping must name one of the {len(transfers)} transferred models")
    for G in transfers:
        check_compatible(G_base, G)
    res = G_base.block_resolutions
    alphas = [spec.alphas(res) for spec in specs]
    buffers = {name for name, _ in G_base.named_buffers() if G_base.is_picked(name)}
    base_state = G_base.state_dict()
    states = [G.state_dict() for G in transfers]
    out_state = {}
    for name, a in base_state.items():
        r = G_base.resolution_of(name)
        if r is None:  # mapping network and w_avg: taken whole from one model
            src = base_state if mapping is None else states[mapping]
            out_state[name] = src[name].clone()
            continue
        weights = [al[r] for al in alphas]
        if name in buffers:
            everyone = [1 - sum(weights)] + weights
            best = max(range(len(everyone)), key=everyone.__getitem__)
            out_state[name] = (a if best == 0 else states[best - 1][name].to(a.device)).clone()
            continue
        value = a.clone()
        for w, st in zip(weights, states):
            if w:
                value += w * (st[name].to(a.device) - a)
        out_state[name] = value
    out = copy.deepcopy(G_base)
    out.load_state_dict(out_state)
    out.blend_info = {"label": "+".join(spec.describe() for spec in specs),
                      "specs": [spec.to_dict() for spec in specs], "mapping": mapping,
                      "transfers": [getattr(G.source, "path", None) for G in transfers]}
    return out
