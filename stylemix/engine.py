"""A live blend: recompose the blended weights in place on every slider change.

``blend()`` builds a new generator each time, which is fine for export but too slow for sliders
on a 1024 px model.  The engine keeps a :class:`~stylemix.blend_plan.BlendPlan` of the pair —
both parents' tensors flattened on the device, ordered so that everything one α controls is one
contiguous slice — and the blended generator's parameters are *views* into a third flat buffer,
so a new α vector is one ``lerp`` per changed slice — no reload, no copy of the model — and the
network renders from the result immediately.  The rules (which α a tensor follows, noise maps
picked, channel α) are the plan's, so the engine gives exactly what ``blend()`` gives.

When the two mapping networks differ in shape (another depth, a class embedding), the engine
holds both and swaps the live generator's mapping network whole; mixing them is refused.

Renders from several browser sessions go through :meth:`BlendEngine.session`, which holds a lock
while it recomposes and renders, so no render ever sees another session's α.
"""

from __future__ import annotations

import copy
import threading
import warnings
from contextlib import contextmanager

import torch

from .blend import BlendSpec
from .blend_plan import MAPPING, BlendPlan, BlendWeights, take_mapping
from .networks.generator import StyleGenerator
from .networks.ops import WeightDerived


class BlendEngine:
    """Both parents resident on ``device``; ``generator`` is the live blend.

    ``resolutions`` lists the pair's α groups (block resolutions; sampling rates for StyleGAN3).
    Raises IncompatibleModelsError when the synthesis networks differ."""

    def __init__(self, G_base: StyleGenerator, G_transfer: StyleGenerator, device=None):
        device = torch.device(device) if device is not None else G_base.mapping.w_avg.device
        self.plan = BlendPlan(G_base, [G_transfer], device=device)
        self.generator = copy.deepcopy(G_base).to(device).eval().requires_grad_(False)
        self.generator.forget_file_metadata(keep_source=True)  # its pickle stays the export template
        self.resolutions = self.plan.groups
        self._out = self.plan.base.clone()
        for name, view in self.plan.tensors(self._out).items():
            self._rebind(name, view)
        # Layers keep tensors derived from their weight between renders (networks.ops.
        # WeightDerived), but every view of the flat buffer shares one version counter, so any
        # write looks like a change to all of them: after a recomposition the engine vouches
        # for the weights it did not rewrite.
        self._derived = []  # (α group, layer) for every layer that keeps such tensors
        for e in self.plan.entries:
            module_name, _, attr = e.name.rpartition(".")
            module = self.generator.get_submodule(module_name)
            if attr == "weight" and isinstance(getattr(module, "derived", None), WeightDerived):
                self._derived.append((e.key, module))
        # Unequal mapping networks are taken whole: the live one is base's, plus a copy of the
        # transfer's, each with the generator it came from (for its config).
        self._mappings = None
        if self.plan.mapping_mismatch is not None:
            theirs = copy.deepcopy(G_transfer.mapping).to(device).eval().requires_grad_(False)
            self._mappings = [(self.generator.mapping, G_base), (theirs, G_transfer)]
        self._weights: BlendWeights | None = None
        self._lock = threading.RLock()
        self.set_alphas({}, mapping=0.0)

    def compile(self, mode: str | None = None) -> None:
        """Render through ``torch.compile`` of the live synthesis network (opt-in: a one-off
        compile per input shape, then about 2-3x faster on a CPU; ``mode="reduce-overhead"``
        adds CUDA graphs on a GPU).  Weights stay graph inputs, so recomposition needs no
        recompile.  If the compiler is missing or fails, rendering carries on eagerly, once
        warned; ``compiled`` says which path is live."""
        synthesis = self.generator.synthesis
        eager = synthesis.forward
        fast = torch.compile(eager, dynamic=False, mode=mode)
        self.compiled = True

        def forward(*args, **kwargs):
            if self.compiled:
                try:
                    return fast(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001  (any compiler failure: fall back)
                    self.compiled = False
                    warnings.warn(f"torch.compile failed ({type(exc).__name__}); rendering eagerly")
            return eager(*args, **kwargs)

        synthesis.forward = forward

    compiled = False

    def _rebind(self, name: str, view: torch.Tensor) -> None:
        """Make parameter/buffer ``name`` of the live generator a view into the output buffer."""
        module_name, _, attr = name.rpartition(".")
        module = self.generator.get_submodule(module_name)
        if attr in module._parameters:
            module._parameters[attr] = torch.nn.Parameter(view, requires_grad=False)
        else:
            module._buffers[attr] = view

    def set_alphas(self, alphas: dict[int, float], mapping: float = 0.0,
                   channels: dict[int, dict[int, float]] | None = None) -> None:
        """Recompose: rewrite only the slices whose α changed since the last call. Groups not in
        ``alphas`` take 0 (base); ``channels`` ({res: {channel: α}}) gives single feature maps
        their own α. Raises BlendSpecError for groups or channels the pair does not have."""
        self._apply(self.plan.from_alphas(alphas, mapping, channels))

    def set_spec(self, spec: BlendSpec) -> None:
        self._apply(self.plan.weights(spec))

    @torch.no_grad()
    def _apply(self, weights: BlendWeights) -> None:
        with self._lock:
            old = self._weights
            changed = [key for key in self.plan.spans if old is None or old.of(key) != weights.of(key)
                       or old.channels.get(key) != weights.channels.get(key)]
            self.plan.write(self._out, weights, changed)
            for key, module in self._derived:
                if key not in changed:
                    module.derived.vouch(module.weight)
            source = self.plan.mapping_source(weights)
            if self._mappings is not None:
                module, donor = self._mappings[source]
                if self.generator.mapping is not module:
                    take_mapping(self.generator, module, donor)
            if MAPPING in changed and source is None:
                self.generator.estimate_w_avg()  # blended mapping: its own mean w, as blend() does
            self._weights = weights

    @contextmanager
    def session(self, spec_or_alphas, mapping: float | None = None):
        """Hold the engine for one render with these α: ``with engine.session(spec) as G: ...``."""
        with self._lock:
            if isinstance(spec_or_alphas, BlendSpec):
                self.set_spec(spec_or_alphas)
            else:
                self.set_alphas(spec_or_alphas, mapping=mapping or 0.0)
            yield self.generator
