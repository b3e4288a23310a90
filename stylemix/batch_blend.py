"""Many blends in one forward pass: sample i of a batch rendered by blend i.

A blend is just another set of weights, and StyleGAN2's modulated convolution already works
with a weight per sample. ``torch.func.vmap`` over ``functional_call`` runs the synthesis
network once with a stacked set of weights — base + α_i ⊙ (transfer − base) for every i — so
a grid of blend settings (every swap resolution, an α sweep, several visitors' requests)
costs one batched pass instead of N recompose-and-render rounds. Memory grows with N copies of
the synthesis weights, which is why the engine, not this, serves the sliders.
"""

from __future__ import annotations

import torch
from torch.func import functional_call, vmap

from .blend import BlendSpec
from .blend_plan import BlendPlan
from .errors import BlendSpecError
from .networks.generator import StyleGenerator


class BlendBatch:
    """Render ``specs[i]`` for ``ws[i]`` (or one shared latent) in a single pass.

    The weights come from the pair's :class:`~stylemix.blend_plan.BlendPlan`, so sample i is
    exactly what ``blend(G_base, G_transfer, specs[i])`` renders."""

    def __init__(self, G_base: StyleGenerator, G_transfer: StyleGenerator):
        self.plan = BlendPlan(G_base, [G_transfer])
        self.G_base, self.G_transfer = G_base, G_transfer
        self.resolutions = self.plan.groups
        # Generators whose mapping network each mapping weight uses (whole parents at 0 and 1).
        self._mappings: dict[float, StyleGenerator] = {0.0: G_base, 1.0: G_transfer}

    @torch.no_grad()
    def weights(self, specs: list[BlendSpec]) -> dict[str, torch.Tensor]:
        """The synthesis network's tensors stacked over the specs: [N, *shape] each."""
        if not specs:
            raise BlendSpecError("give at least one blend spec")
        weights = [self.plan.weights(spec) for spec in specs]  # all checked before any work
        flat = torch.empty(len(specs), self.plan.numel, device=self.plan.device)
        for row, w in zip(flat, weights):
            self.plan.write(row, w)
        return self.plan.tensors(flat, prefix="synthesis.")

    def _mapping(self, weight: float) -> StyleGenerator:
        if weight not in self._mappings:
            self._mappings[weight] = self.plan.generator(self.plan.from_alphas({}, weight))
        return self._mappings[weight]

    @torch.no_grad()
    def render(self, specs: list[BlendSpec], z: torch.Tensor, psi: float | list[float] = 1.0,
               noise_mode: str = "const", c: torch.Tensor | None = None) -> torch.Tensor:
        """Images [N, C, H, W]: sample i is ``specs[i]`` applied to ``z[i]`` (or to ``z[0]`` for all
        when z has one row), each spec's mapping network and w_avg as ``blend()`` would give.
        ``psi`` is one truncation ψ for all or one per spec (visitors' own sliders); ``c``
        ([N or 1, c_dim] one-hot) is the class of a conditional mapping network."""
        if not specs:
            raise BlendSpecError("give at least one blend spec")
        device = self.G_base.mapping.w_avg.device
        z = torch.as_tensor(z, device=device).float()
        if z.shape[0] == 1:
            z = z.expand(len(specs), -1)
        if z.shape[0] != len(specs):
            raise BlendSpecError(f"give one latent or one per spec ({len(specs)}), not {z.shape[0]}")
        if c is not None:
            c = torch.as_tensor(c, device=device).float()
            c = c.expand(len(specs), -1) if c.shape[0] == 1 else c
        psis = [float(psi)] * len(specs) if isinstance(psi, (int, float)) else [float(p) for p in psi]
        if len(psis) != len(specs):
            raise BlendSpecError(f"give one ψ or one per spec ({len(specs)}), not {len(psis)}")
        weights = self.weights(specs)
        ws = torch.stack([self._mapping(float(spec.mapping)).mapping(
            z[i:i + 1], None if c is None else c[i:i + 1], truncation_psi=psis[i])
            for i, spec in enumerate(specs)])          # [N, 1, num_ws, w_dim]
        synthesis = self.G_base.synthesis

        def one(weights, w):
            return functional_call(synthesis, weights, (w,), {"noise_mode": noise_mode})

        return vmap(one)(weights, ws)[:, 0]
