"""A live blend: recompose the blended weights in place on every slider change.

``blend()`` builds a new generator each time, which is fine for export but too slow for sliders
on a 1024 px model.  The engine keeps both parents' tensors flattened on the device, ordered so
that everything one α controls is one contiguous slice.  The blended generator's parameters are
*views* into a third flat buffer, so a new α vector is one ``lerp`` per changed slice — no
reload, no copy of the model — and the network renders from the result immediately.

Renders from several browser sessions go through :meth:`BlendEngine.session`, which holds a lock
while it recomposes and renders, so no render ever sees another session's α.
"""

from __future__ import annotations

import copy
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .errors import BlendSpecError
from .blend import BlendSpec, channel_alpha_vector, check_channel_support, check_compatible
from .networks import Generator

MAPPING = "mapping"


@dataclass
class _Slice:
    start: int
    stop: int


class BlendEngine:
    """Both parents resident on ``device``; ``generator`` is the live blend."""

    def __init__(self, G_base: Generator, G_transfer: Generator, device=None):
        check_compatible(G_base, G_transfer)
        device = torch.device(device) if device is not None else G_base.mapping.w_avg.device
        self.generator = copy.deepcopy(G_base).to(device).eval().requires_grad_(False)
        self.generator.blend_info = None
        self.resolutions = self.generator.block_resolutions
        transfer_state = G_transfer.state_dict()
        live = self.generator
        tensors = dict(live.named_parameters())
        tensors.update(live.named_buffers())

        def group_of(name: str) -> tuple:  # (α key, picked whole (noise maps), not interpolated)
            res = live.resolution_of(name)
            key = MAPPING if res is None else res
            return (key, live.is_picked(name))

        groups = {name: group_of(name) for name in tensors}
        order = sorted(tensors, key=lambda n: (str(groups[n][0]), groups[n][1], n))
        sizes = [tensors[n].numel() for n in order]
        self._base = torch.cat([tensors[n].detach().reshape(-1).float() for n in order]).to(device)
        self._transfer = torch.cat([transfer_state[n].reshape(-1).float() for n in order]).to(device)
        self._out = self._base.clone()
        self._slices: dict[tuple, _Slice] = {}
        # Channel tensors per resolution: (offset, channels, row size); a channel is one row.
        self._channel_rows: dict[int, list[tuple[int, int, int, str]]] = {}
        offset = 0
        for name, size in zip(order, sizes):
            key = groups[name]
            sl = self._slices.setdefault(key, _Slice(offset, offset))
            sl.stop = offset + size
            self._rebind(name, self._out[offset: offset + size].view(tensors[name].shape))
            if live.is_channel_tensor(name):
                channels = tensors[name].shape[0]
                self._channel_rows.setdefault(key[0], []).append((offset, channels, size // channels, name))
            offset += size
        self._applied: dict[object, float] = {}
        self._applied_channels: dict[int, dict[int, float]] = {}
        self._lock = threading.Lock()
        self.set_alphas({r: 0.0 for r in self.resolutions}, mapping=0.0)

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

    @property
    def num_elements(self) -> int:
        return self._out.numel()

    @torch.no_grad()
    def set_alphas(self, alphas: dict[int, float], mapping: float = 0.0,
                   channels: dict[int, dict[int, float]] | None = None) -> None:
        """Recompose: rewrite only the slices whose α changed since the last call.
        ``channels`` ({res: {channel: α}}) gives single feature maps their own α."""
        wanted = {r: float(alphas.get(r, 0.0)) for r in self.resolutions}
        wanted[MAPPING] = float(mapping)
        channels = {int(r): {int(c): float(a) for c, a in chs.items()}
                    for r, chs in (channels or {}).items() if chs}
        check_channel_support(self.generator, channels)
        for res, chs in channels.items():
            if res not in self._channel_rows:
                raise BlendSpecError(f"channel α given for {res} px, but the models' resolutions "
                                     f"are {', '.join(map(str, self.resolutions))}")
            for _, count, _, name in self._channel_rows[res]:
                channel_alpha_vector(0.0, chs, count, name)  # validates the channel numbers
        for res in set(channels) | set(self._applied_channels):
            if channels.get(res) != self._applied_channels.get(res):
                self._applied.pop((res, False), None)  # the block must be rewritten
        for (key, pick), sl in self._slices.items():
            alpha = wanted[key]
            if self._applied.get((key, pick)) == alpha:
                continue
            weight = float(alpha > 0.5) if pick else alpha
            torch.lerp(self._base[sl.start: sl.stop], self._transfer[sl.start: sl.stop], weight,
                       out=self._out[sl.start: sl.stop])
            self._applied[(key, pick)] = alpha
            if not pick and key in channels:
                self._apply_channels(key, channels[key])
            if key == MAPPING and alpha not in (0.0, 1.0):
                self.generator.estimate_w_avg()  # blended mapping: its own mean w, as blend() does
        self._applied_channels = channels

    def _apply_channels(self, res: int, chs: dict[int, float]) -> None:
        """Overwrite the rows of the chosen channels with their own α."""
        for offset, _, row, _ in self._channel_rows[res]:
            for channel, alpha in chs.items():
                lo, hi = offset + channel * row, offset + (channel + 1) * row
                torch.lerp(self._base[lo:hi], self._transfer[lo:hi], alpha, out=self._out[lo:hi])

    def set_spec(self, spec: BlendSpec) -> None:
        self.set_alphas(spec.alphas(self.resolutions), mapping=spec.mapping,
                        channels=spec.channel_alphas())

    @contextmanager
    def session(self, spec_or_alphas, mapping: float | None = None):
        """Hold the engine for one render with these α: ``with engine.session(spec) as G: ...``."""
        with self._lock:
            if isinstance(spec_or_alphas, BlendSpec):
                self.set_spec(spec_or_alphas)
            else:
                self.set_alphas(spec_or_alphas, mapping=mapping or 0.0)
            yield self.generator
