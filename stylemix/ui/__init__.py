"""Gradio page for stylemix: a thin layer over the library.

One shared :class:`~stylemix.toonify.Toonifier` (and its engine) per model pair serves every
visitor; each browser session keeps its own slider values and projected face in Gradio state,
and the engine's lock guarantees no render sees another session's α.  Each part of the page is
its own module (controls, channels_panel, models_panel, blend_tab, mix_tab, toonify_tab) with
handlers as methods returning dicts; services holds what they share and the one error wrapper.

Order of work after a change: the blend image first (one render), then the projected face, the
parents (cached) and the grid, then the mix, each dropped when a newer slider state arrives.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .. import default_pair
from ..errors import StylemixError
from .blend_tab import ANIMATIONS, GRID_SEEDS, BlendTab
from .channels_panel import REGIONS, ChannelsPanel, parse_channel_list
from .controls import (ALL_RESOLUTIONS, PRESETS, Controls, family_note, preset_alphas,
                       slider_labels, spec_from_sliders, toonify_swap)
from .exports import ExportArea, export_blend
from .images import render_one, render_triptych
from .mix_tab import MIX_MODELS, MixTab, render_mix
from .models_panel import ModelsPanel
from .pairs import ModelCache, PairCache, friendly
from ..render_batch import RenderQueue, default_max_batch
from .page import PageBlocks
from .services import Services
from .toonify_tab import ToonifyTab

MODELS_DIR = default_pair.models_dir()

__all__ = ["ALL_RESOLUTIONS", "ANIMATIONS", "GRID_SEEDS", "MIX_MODELS", "PRESETS", "REGIONS",
           "build_demo", "export_blend", "family_note", "parse_channel_list", "preset_alphas",
           "render_mix", "render_one", "render_triptych", "slider_labels", "spec_from_sliders",
           "toonify_swap"]


def build_demo(base_path, transfer_path, device: str = "cpu", models_dir: Path = MODELS_DIR,
               max_upload_mb: int = 1024, cache: PairCache | None = None,
               exports: ExportArea | None = None, compile: bool = False,
               max_batch: int | None = None) -> PageBlocks:
    """The page; ``base_path``/``transfer_path`` is the pair every new visitor starts on.
    ``compile`` renders through torch.compile (see BlendEngine.compile); main images that
    visitors ask for together are rendered in one pass of up to ``max_batch`` (RenderQueue;
    default: default_max_batch(device), i.e. batched on a GPU, each alone on a CPU)."""
    services = Services(cache or PairCache(device=device, compile=compile), ModelCache(device=device),
                        exports or ExportArea(), Path(models_dir), max_upload_mb,
                        renders=RenderQueue(max_batch=max_batch or default_max_batch(device)))
    try:
        key, default = services.cache.load(Path(base_path), Path(transfer_path))
        G, T, problem = default.G_base, default.G_transfer, None
    except (StylemixError, OSError) as exc:
        key, G, T = None, None, None
        problem = (f"Cannot load the model pair: {friendly(exc)}. Start with --base BASE "
                   "--transfer TRANSFER, or load a pair below.")

    # delete_cache: Gradio's own copies of served files go after an hour, checked every 10 min.
    with PageBlocks(title="stylemix", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown("# stylemix — resolution-dependent GAN blending")
        status = gr.Markdown(f"**{problem}**" if problem else family_note(G).strip(), elem_id="status")
        models = ModelsPanel(services, status, open=G is None)
        gr.Markdown("α per resolution: **0 = base, 1 = transfer**. Low resolutions shape the "
                    "structure (pose, head shape), high ones the texture and rendering.")
        controls = Controls(services, G, key, T)
        channels = ChannelsPanel(services, controls, G)
        with gr.Tab("Blend"):
            blend = BlendTab(services, controls, G)
        with gr.Tab("Mix several models") as mix_tab:
            mix = MixTab(services, controls, blend.seed, blend.psi, G, key, T)
        with gr.Tab("Toonify"):
            toonify = ToonifyTab(services, controls, default if G is not None else None)

        controls.wire()
        main = blend.wire(demo)
        shown = blend.wait_for_blend_image(main)
        mix.follow(blend.follow(toonify.follow(shown, blend.ticket)), blend.ticket)
        mix.wire(mix_tab)
        channels.wire(blend.seed, blend.psi)
        toonify.wire()
        models.wire([controls, channels, blend, mix, toonify])
        demo.unload(services.forget_session)
    return demo
