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

from .blend import BlendSpec, channel_alpha_vector, check_compatible
from .errors import BlendSpecError
from .networks import Generator


class BlendBatch:
    """Render ``specs[i]`` for ``ws[i]`` (or one shared latent) in a single pass."""

    def __init__(self, G_base: Generator, G_transfer: Generator):
        check_compatible(G_base, G_transfer)
        self.G_base, self.G_transfer = G_base, G_transfer
        self.resolutions = G_base.block_resolutions
        self._base = {**dict(G_base.synthesis.named_parameters()), **dict(G_base.synthesis.named_buffers())}
        self._transfer = {**dict(G_transfer.synthesis.named_parameters()),
                          **dict(G_transfer.synthesis.named_buffers())}
        self._mappings: dict[float, Generator] = {0.0: G_base}

    def _alpha(self, name: str, a: torch.Tensor, specs: list[BlendSpec], tables) -> torch.Tensor:
        """α per sample for tensor ``name``, shaped to broadcast against [N, *a.shape]."""
        res = self.G_base.resolution_of("synthesis." + name)
        rows = []
        for spec, table in zip(specs, tables):
            block = table[res]
            channels = spec.channel_alphas().get(res)
            if channels and self.G_base.is_channel_tensor("synthesis." + name):
                rows.append(channel_alpha_vector(block, channels, a.shape[0], name)
                            .view(-1, *[1] * (a.ndim - 1)))
            else:
                rows.append(torch.full([1] * a.ndim, float(block)))
        shape = torch.broadcast_shapes(*(r.shape for r in rows))
        return torch.stack([r.expand(shape) for r in rows]).to(a.device, a.dtype)

    @torch.no_grad()
    def weights(self, specs: list[BlendSpec]) -> dict[str, torch.Tensor]:
        """The synthesis network's tensors stacked over the specs: [N, *shape] each."""
        if not specs:
            raise BlendSpecError("give at least one blend spec")
        tables = [spec.alphas(self.resolutions) for spec in specs]
        out = {}
        for name, a in self._base.items():
            b = self._transfer[name].to(a.device)
            if name.endswith("resample_filter"):
                out[name] = a.expand(len(specs), *a.shape)
                continue
            alpha = self._alpha(name, a, specs, tables)
            if self.G_base.is_picked("synthesis." + name):  # noise maps are picked, never averaged
                out[name] = torch.where(alpha > 0.5, b, a)
            else:
                out[name] = a + alpha * (b - a)
        return out

    def _mapping(self, weight: float) -> Generator:
        if weight not in self._mappings:
            from .blend import blend
            self._mappings[weight] = blend(self.G_base, self.G_transfer, BlendSpec.linear(0.0, mapping=weight))
        return self._mappings[weight]

    @torch.no_grad()
    def render(self, specs: list[BlendSpec], z: torch.Tensor, psi: float = 1.0,
               noise_mode: str = "const") -> torch.Tensor:
        """Images [N, C, H, W]: sample i is ``specs[i]`` applied to ``z[i]`` (or to ``z[0]`` for all
        when z has one row), each spec's mapping network and w_avg as ``blend()`` would give."""
        device = self.G_base.mapping.w_avg.device
        z = torch.as_tensor(z, device=device).float()
        if z.shape[0] == 1:
            z = z.expand(len(specs), -1)
        if z.shape[0] != len(specs):
            raise BlendSpecError(f"give one latent or one per spec ({len(specs)}), not {z.shape[0]}")
        ws = torch.stack([self._mapping(float(spec.mapping)).mapping(z[i:i + 1], truncation_psi=psi)
                          for i, spec in enumerate(specs)])          # [N, 1, num_ws, w_dim]
        synthesis = self.G_base.synthesis

        def one(weights, w):
            return functional_call(synthesis, weights, (w,), {"noise_mode": noise_mode})

        return vmap(one)(self.weights(specs), ws)[:, 0]
