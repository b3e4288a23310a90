"""The blend kernel: which α each tensor follows and how it is combined, worked out once.

Every way stylemix blends — :func:`stylemix.blend`, :func:`stylemix.blend_many`, the live
:class:`~stylemix.engine.BlendEngine` and the batched :class:`~stylemix.batch_blend.BlendBatch` —
goes through a :class:`BlendPlan`. A plan is made once for a base and the models fine-tuned from
it: it checks they can be blended, lays every blended tensor out in one flat float32 buffer,
ordered so that each α group is one contiguous slice, and writes a set of weights into such a
buffer. The rules live here and nowhere else:

* **α groups.** A synthesis tensor follows the α of its group: its block's resolution for
  StyleGAN2 (``synthesis.b64.*`` → 64, torgb and noise included), the sampling rate of its
  layer's output for StyleGAN3. The mapping network and ``w_avg`` follow the mapping weight.
* **Interpolated** (learned parameters): θ = θ_base + Σᵢ αᵢ (θᵢ − θ_base) — for two models
  ``lerp(θ_base, θ_transfer, α)``, which gives each parent's tensors exactly at α = 0 and 1.
* **Picked** (noise maps and FIR filters): fixed random buffers, never averaged — the average
  of two noise maps has less variance than either — but taken whole from the model that weighs
  most in the group, base weighing 1 − Σᵢ αᵢ; a tie goes to base, then to the earlier model.
  For two models that is "transfer when α > 0.5".
* **Per channel** (StyleGAN2): the rows of a block's const, conv and skip weights and biases
  (axis 0 = the block's output feature maps) can take their own α, by the rules above.
* **Mapping network.** When every model's mapping network has the same shape it is blended like
  a parameter, and a blend of mappings gets its own mean w (``w_avg`` is re-estimated: a lerp of
  two means is not the mean of the blended network). When they differ — a model fine-tuned with
  another ``--cfg`` gets another depth, a conditional model fine-tuned from an unconditional
  base gets an embedding — only the synthesis networks must match: the mapping comes whole from
  one model, and mixing them is refused with the difference named.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch

from .errors import BlendSpecError, IncompatibleModelsError
from .networks.config import MAPPING_FIELDS
from .networks.generator import StyleGenerator

MAPPING = "mapping"  # the key of the mapping network's weight, beside the α groups
_FAMILY = {"stylegan2": "StyleGAN2", "stylegan3": "StyleGAN3"}
# Mapping options that change its output without changing any tensor's shape.
_MAPPING_BEHAVIOUR = ("mapping_activation", "mapping_lr_multiplier")


def _shapes(G: StyleGenerator, part: str) -> dict[str, list[int]]:
    """{name: shape} of G's ``part`` ("synthesis" or "mapping"), named as in G.state_dict()."""
    return {name: list(t.shape) for name, t in getattr(G, part).state_dict(prefix=part + ".").items()}


def _first_difference(a: dict, b: dict, names: tuple[str, str]) -> str | None:
    for name in list(a) + [n for n in b if n not in a]:
        if name not in b:
            return f"'{name}' exists in {names[0]} but not in {names[1]}"
        if name not in a:
            return f"'{name}' exists in {names[1]} but not in {names[0]}"
        if a[name] != b[name]:
            return f"'{name}' has shape {a[name]} in {names[0]} but {b[name]} in {names[1]}"
    return None


def check_compatible(G_base: StyleGenerator, G_transfer: StyleGenerator,
                     which: str = "transfer") -> None:
    """Raise IncompatibleModelsError unless the synthesis networks match tensor for tensor.

    The mapping networks may differ (see :func:`mapping_difference`): a blend can still take
    its mapping whole from one side. ``which`` names the second model in the message.
    """
    not_from = f"the {which} model was not fine-tuned from this base"
    if (G_base.family, G_base.config.architecture) != (G_transfer.family, G_transfer.config.architecture):
        raise IncompatibleModelsError(
            f"cannot blend a {_FAMILY[G_base.family]} '{G_base.config.architecture}' generator with "
            f"a {_FAMILY[G_transfer.family]} '{G_transfer.config.architecture}' one: {not_from}")
    detail = _first_difference(_shapes(G_base, "synthesis"), _shapes(G_transfer, "synthesis"), ("base", which))
    if detail is None:
        return
    for summary in (
            G_base.img_resolution != G_transfer.img_resolution
            and f"base makes {G_base.img_resolution} px images, {which} {G_transfer.img_resolution} px",
            G_base.img_channels != G_transfer.img_channels
            and f"base makes {G_base.img_channels}-channel images, {which} {G_transfer.img_channels}-channel",
            G_base.w_dim != G_transfer.w_dim and f"w_dim {G_base.w_dim} in base, {G_transfer.w_dim} in {which}"):
        if summary:
            detail = f"{summary}; {detail}"
            break
    raise IncompatibleModelsError(f"cannot blend: {not_from} (first difference: {detail})")


def _classes(c_dim: int) -> str:
    return f"conditional with {c_dim} classes" if c_dim else "unconditional"


def mapping_difference(G_a: StyleGenerator, G_b: StyleGenerator) -> str | None:
    """How two mapping networks differ, in words ("8 and 2 layers"), or None when they have the
    same shape and options, so that they can be interpolated."""
    ca, cb = G_a.config, G_b.config
    if ca.mapping_layers != cb.mapping_layers:
        return f"{ca.mapping_layers} and {cb.mapping_layers} layers"
    if G_a.c_dim != G_b.c_dim:
        return f"{_classes(G_a.c_dim)} and {_classes(G_b.c_dim)}"
    if G_a.z_dim != G_b.z_dim:
        return f"z_dim {G_a.z_dim} and {G_b.z_dim}"
    for name in _MAPPING_BEHAVIOUR:
        if getattr(ca, name) != getattr(cb, name):
            return f"{name} {getattr(ca, name)} and {getattr(cb, name)}"
    return _first_difference(_shapes(G_a, "mapping"), _shapes(G_b, "mapping"), ("one", "the other"))


def check_channel_support(G: StyleGenerator, channels) -> None:
    """Channel α needs feature maps shared by a whole α group: StyleGAN2 blocks have them."""
    if channels and not G.supports_channel_alpha:
        raise BlendSpecError(f"channel α works with StyleGAN2 models only; this pair is "
                             f"{G.config.architecture} (blend it by sampling rate instead)")


def take_mapping(G: StyleGenerator, mapping: torch.nn.Module, donor: StyleGenerator) -> None:
    """Give ``G`` the mapping network ``mapping`` (a copy of ``donor``'s), and with it the
    donor's mapping config: depth, z_dim, c_dim. The synthesis network is untouched."""
    G.mapping = mapping
    G.config = dataclasses.replace(G.config, **{f: getattr(donor.config, f) for f in MAPPING_FIELDS})
    G.z_dim, G.c_dim = donor.z_dim, donor.c_dim


@dataclass(frozen=True)
class BlendWeights:
    """The weights of one blend of a base with N models: for each α group and for the mapping
    network, one weight per transferred model (base weighs 1 − their sum); ``channels``
    ({group: {channel: weights}}) overrides single feature maps."""

    groups: Mapping[int, tuple[float, ...]]
    mapping: tuple[float, ...]
    channels: Mapping[int, Mapping[int, tuple[float, ...]]] = field(default_factory=dict)

    def of(self, key) -> tuple[float, ...]:
        return self.mapping if key == MAPPING else self.groups[key]


def _winner(weights: Sequence[float]) -> int:
    """The picking rule: 0 for base (weight 1 − Σ), i for transfer i; ties go to the earlier."""
    everyone = [1.0 - sum(weights), *weights]
    return max(range(len(everyone)), key=everyone.__getitem__)


def _combine(out: torch.Tensor, base: torch.Tensor, models: Sequence[torch.Tensor],
             weights: Sequence[float]) -> None:
    """out ← base + Σᵢ wᵢ (modelᵢ − base); a lerp while one weight is non-zero (exact at 0 and 1)."""
    terms = [(m, float(w)) for m, w in zip(models, weights) if w != 0]
    if not terms:
        out.copy_(base)
        return
    torch.lerp(base, terms[0][0], terms[0][1], out=out)
    for m, w in terms[1:]:
        out.add_(m - base, alpha=w)


@dataclass(frozen=True)
class _Entry:
    name: str
    shape: tuple[int, ...]
    key: object        # α group (int) or MAPPING
    picked: bool
    offset: int
    numel: int
    row: int           # values per output channel for channel tensors (channel α), else 0


class BlendPlan:
    """Everything needed to blend ``G_base`` with ``transfers``, computed once.

    ``base`` and ``models[i]`` hold the parents' blended tensors flattened (float32, on
    ``device``); :meth:`write` applies :class:`BlendWeights` into a buffer of the same size
    (or a batch of them, [..., numel]); :meth:`tensors` views a buffer as named tensors;
    :meth:`generator` builds a stand-alone blended generator. Raises IncompatibleModelsError
    when a synthesis network differs from the base's.
    """

    def __init__(self, G_base: StyleGenerator, transfers: Sequence[StyleGenerator], device=None):
        transfers = list(transfers)
        if not transfers:
            raise BlendSpecError("give at least one model to blend with the base")
        names = ["transfer"] if len(transfers) == 1 else [f"transfer {i + 1}" for i in range(len(transfers))]
        for G, which in zip(transfers, names):
            check_compatible(G_base, G, which)
        self.G_base, self.transfers, self.model_names = G_base, transfers, names
        self.groups: list[int] = G_base.alpha_groups
        self.supports_channel_alpha = G_base.supports_channel_alpha
        # The first mapping network that differs from base's, as (index, how), or None.
        self.mapping_mismatch = next(
            ((i, d) for i, G in enumerate(transfers) if (d := mapping_difference(G_base, G))), None)
        self.device = torch.device(device) if device is not None else G_base.mapping.w_avg.device

        base_state = G_base.state_dict()
        order = {g: i for i, g in enumerate(self.groups)}
        entries = []
        for name, t in base_state.items():
            group = G_base.alpha_group_of(name)
            if group is None and self.mapping_mismatch is not None:
                continue  # unequal mapping networks are taken whole, outside the buffer
            key = MAPPING if group is None else group
            entries.append((order.get(key, len(order)), G_base.is_picked(name), name, key, t))
        entries.sort(key=lambda e: e[:3])
        self.entries: list[_Entry] = []
        self._channel_rows: dict[int, list[tuple[int, int, int, str]]] = {}
        offset = 0
        for _, picked, name, key, t in entries:
            channel = key != MAPPING and G_base.is_channel_tensor(name)
            entry = _Entry(name, tuple(t.shape), key, picked, offset, t.numel(),
                           t.numel() // t.shape[0] if channel else 0)
            self.entries.append(entry)
            if channel:
                self._channel_rows.setdefault(key, []).append((offset, t.shape[0], entry.row, name))
            offset += entry.numel
        # key → (interpolated slice, picked slice): contiguous, interpolated tensors first.
        self.spans: dict[object, tuple[slice, slice]] = {}
        for key in dict.fromkeys(e.key for e in self.entries):
            mine = [e for e in self.entries if e.key == key]
            start, stop = mine[0].offset, mine[-1].offset + mine[-1].numel
            cut = next((e.offset for e in mine if e.picked), stop)
            self.spans[key] = (slice(start, cut), slice(cut, stop))
        # Channel tensors of each group, as (start within the group's interpolated span, row size).
        self._span_rows = {key: [(offset - self.spans[key][0].start, row)
                                 for offset, _, row, _ in self._channel_rows.get(key, [])]
                           for key in self.spans}
        self.numel = offset
        self._states = [base_state] + [G.state_dict() for G in transfers]  # references, no copies
        self._flat: list[torch.Tensor] | None = None

    @property
    def base(self) -> torch.Tensor:
        """Base's blended tensors as one flat float32 buffer on ``device`` (made on first use)."""
        return self._parents()[0]

    @property
    def models(self) -> list[torch.Tensor]:
        """Each transferred model's tensors, flat like :attr:`base`."""
        return self._parents()[1:]

    def _parents(self) -> list[torch.Tensor]:
        if self._flat is None:
            self._flat = [torch.cat([state[e.name].detach().reshape(-1).to(self.device, torch.float32)
                                     for e in self.entries]) for state in self._states]
        return self._flat

    # -- weights ------------------------------------------------------------------------------
    def weights(self, spec) -> BlendWeights:
        """A two-model :class:`~stylemix.BlendSpec` as weights (checked)."""
        if len(self.transfers) != 1:
            raise BlendSpecError(f"this plan blends {len(self.transfers)} models: give one spec each")
        return self.from_alphas(spec.alphas(self.groups), spec.mapping, spec.channel_alphas())

    def from_alphas(self, alphas: Mapping[int, float], mapping: float = 0.0,
                    channels: Mapping[int, Mapping[int, float]] | None = None) -> BlendWeights:
        """Two-model weights from {group: α} (unlisted groups take 0, i.e. base), a mapping
        weight and channel overrides {group: {channel: α}} (checked)."""
        unknown = sorted(set(alphas) - set(self.groups), key=str)
        if unknown:
            raise BlendSpecError(f"α given for {unknown[0]} px, but the models' α groups are "
                                 f"{', '.join(map(str, self.groups))} px")
        weights = BlendWeights(
            groups={g: (float(alphas.get(g, 0.0)),) for g in self.groups}, mapping=(float(mapping),),
            channels={int(g): {int(c): (float(a),) for c, a in chs.items()}
                      for g, chs in (channels or {}).items() if chs})
        self.check(weights)
        return weights

    def weights_many(self, specs, mapping: int | None = None) -> BlendWeights:
        """Weights for one spec per transferred model; the mapping network comes whole from
        transfer ``mapping`` (an index), or from base when None."""
        if len(specs) != len(self.transfers):
            raise BlendSpecError("give one blend spec per transferred model")
        if mapping is not None and not 0 <= mapping < len(self.transfers):
            raise BlendSpecError(f"mapping must name one of the {len(self.transfers)} transferred models")
        if any(spec.channel_table for spec in specs):
            raise BlendSpecError("channel α is supported for two-model blends only")
        tables = [spec.alphas(self.groups) for spec in specs]
        weights = BlendWeights(
            groups={g: tuple(float(t[g]) for t in tables) for g in self.groups},
            mapping=tuple(float(i == mapping) for i in range(len(self.transfers))))
        self.check(weights)
        return weights

    def mapping_source(self, weights: BlendWeights) -> int | None:
        """0 when the mapping network is base's, i + 1 when it is transfer i's whole, None
        when it is a blend of several."""
        w = weights.mapping
        if all(v == 0 for v in w):
            return 0
        ones = [i for i, v in enumerate(w) if v == 1]
        if len(ones) == 1 and all(v == 0 for i, v in enumerate(w) if i != ones[0]):
            return ones[0] + 1
        return None

    def check(self, weights: BlendWeights) -> None:
        """Refuse weights this plan cannot apply, with the reason in the user's words."""
        n = len(self.transfers)
        if set(weights.groups) != set(self.groups) or any(len(w) != n for w in weights.groups.values()) \
                or len(weights.mapping) != n:
            raise BlendSpecError(f"weights must give {n} value(s) for each of the α groups "
                                 f"{', '.join(map(str, self.groups))} and for the mapping network")
        values = [*weights.mapping, *(v for w in weights.groups.values() for v in w),
                  *(v for chs in weights.channels.values() for w in chs.values() for v in w)]
        if not all(math.isfinite(v) for v in values):
            raise BlendSpecError("every α must be a finite number")
        if self.mapping_mismatch is not None and self.mapping_source(weights) is None:
            i, how = self.mapping_mismatch
            other = self.model_names[i]
            sources = "from base or from transfer" if n == 1 else "from base or from one transferred model"
            raise BlendSpecError(
                f"the mapping networks of base and {other} differ ({how}), so they cannot be "
                f"blended: take the mapping {sources}")
        if not weights.channels:
            return
        check_channel_support(self.G_base, True)
        if n != 1:
            raise BlendSpecError("channel α is supported for two-model blends only")
        for group, chs in weights.channels.items():
            if group not in self._channel_rows:
                raise BlendSpecError(f"channel α given for {group} px, but the models' resolutions "
                                     f"are {', '.join(map(str, self.groups))}")
            for _, count, _, name in self._channel_rows[group]:
                bad = [c for c in chs if not 0 <= c < count]
                if bad:
                    raise BlendSpecError(f"channel {bad[0]} does not exist: {name} has {count} "
                                         f"channels (0-{count - 1})")

    # -- applying -----------------------------------------------------------------------------
    @staticmethod
    def _apply(out: torch.Tensor, parents: Sequence[torch.Tensor], w: tuple[float, ...], picked: bool,
               rows: list[tuple[int, int]], channels: Mapping[int, tuple[float, ...]]) -> None:
        """The rule for one stretch of a blend (flat): ``parents`` = [base, *models], ``w`` the
        transfers' weights; ``rows`` = (start, row size) of each channel tensor in the stretch."""
        base, models = parents[0], parents[1:]
        if picked:
            out.copy_(parents[_winner(w)])
            return
        _combine(out, base, models, w)
        for channel, cw in channels.items():
            for start, row in rows:
                lo, hi = start + channel * row, start + (channel + 1) * row
                _combine(out[lo:hi], base[lo:hi], [m[lo:hi] for m in models], cw)

    def write(self, out: torch.Tensor, weights: BlendWeights, keys=None) -> None:
        """Write the blend into ``out`` (a flat buffer of :attr:`numel` values, not requiring
        grad), only the α groups in ``keys`` (every group and the mapping network when None).
        ``weights`` must have passed :meth:`check`."""
        parents = self._parents()
        for key in self.spans if keys is None else keys:
            interp, picked = self.spans[key]
            w = weights.of(key)
            if interp.stop > interp.start:
                self._apply(out[interp], [p[interp] for p in parents], w, False, self._span_rows[key],
                            weights.channels.get(key, {}))
            if picked.stop > picked.start:
                self._apply(out[picked], [p[picked] for p in parents], w, True, [], {})

    @torch.no_grad()
    def write_tensors(self, out: Mapping[str, torch.Tensor], weights: BlendWeights) -> None:
        """The same blend written tensor by tensor into ``out`` ({name: tensor}, e.g. a copy of
        base's parameters), straight from the parents: no flat buffers, for one-off blends."""
        for e in self.entries:
            target = out[e.name]
            parents = [state[e.name].detach().to(target.device, target.dtype).reshape(-1)
                       for state in self._states]
            self._apply(target.view(-1), parents, weights.of(e.key), e.picked, [(0, e.row)] if e.row else [],
                        weights.channels.get(e.key, {}))

    @torch.no_grad()
    def compose(self, weights: BlendWeights) -> torch.Tensor:
        """A new flat buffer holding the blend."""
        out = torch.empty_like(self.base)
        self.write(out, weights)
        return out

    def tensors(self, flat: torch.Tensor, prefix: str = "") -> dict[str, torch.Tensor]:
        """Named views into ``flat`` ([..., numel]: leading batch axes are kept), for the tensors
        whose name starts with ``prefix`` (the prefix is stripped)."""
        lead = flat.shape[:-1]
        return {e.name[len(prefix):]: flat[..., e.offset: e.offset + e.numel].view((*lead, *e.shape))
                for e in self.entries if e.name.startswith(prefix)}

    def mapping_donor(self, weights: BlendWeights) -> StyleGenerator:
        """The model whose mapping network the blend takes whole (base when it is mixed)."""
        source = self.mapping_source(weights)
        return self.G_base if not source else self.transfers[source - 1]

    @torch.no_grad()
    def generator(self, weights: BlendWeights) -> StyleGenerator:
        """A stand-alone generator: base's synthesis architecture, blended weights, and the
        mapping network the weights ask for (with its own mean w when it is a blend)."""
        out = copy.deepcopy(self.G_base)
        out.forget_file_metadata(keep_source=True)  # its pickle stays the export template
        if self.mapping_mismatch is not None:
            donor = self.mapping_donor(weights)
            if donor is not self.G_base:
                take_mapping(out, copy.deepcopy(donor.mapping).to(self.device), donor)
                # Its pickle is the template that fits: same synthesis, this mapping network.
                out.source = donor.source
        self.write_tensors({**dict(out.named_parameters()), **dict(out.named_buffers())}, weights)
        if self.mapping_source(weights) is None:
            out.estimate_w_avg()  # a blended mapping network has its own mean w
        return out
