"""Gradio page for stylemix: a thin layer over the library.

One shared :class:`~stylemix.toonify.Toonifier` (and its engine) serves every visitor; each
browser session keeps its own slider values and projected face in Gradio state, and the engine's
lock guarantees no render sees another session's α.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np

from .. import formats
from ..blend import BlendSpec, blend
from ..errors import StylemixError
from ..project import ProjectionConfig
from ..render import make_grid, render_seeds, to_pil, to_uint8
from ..toonify import Toonifier

DISPLAY_SIZE = 256  # small models are enlarged with nearest-neighbour to at least this
GRID_SEEDS = 4
PRESETS = ["swap, low from transfer", "swap, low from base", "linear", "smooth ramp"]


def enlarge(image, size: int = DISPLAY_SIZE) -> np.ndarray:
    """Nearest-neighbour enlargement to ≥ ``size`` px, so 64 px images stay crisp."""
    arr = np.asarray(image)
    return np.asarray(to_pil(arr, max(1, size // arr.shape[0])))


def spec_from_sliders(resolutions: list[int], alphas, mapping: str) -> BlendSpec:
    """Slider values as a spec; zeros are left out (unlisted means base) to keep labels short."""
    table = {r: float(a) for r, a in zip(resolutions, alphas) if float(a) != 0}
    return BlendSpec.per_resolution(table, mapping=mapping)


def preset_alphas(resolutions: list[int], preset: str, r: int, alpha: float, width: float) -> list[float]:
    """Slider values for a preset (r: swap resolution or ramp centre)."""
    if preset == PRESETS[0]:
        spec = BlendSpec.swap(r, low="transfer")
    elif preset == PRESETS[1]:
        spec = BlendSpec.swap(r, low="base")
    elif preset == PRESETS[2]:
        spec = BlendSpec.linear(alpha)
    else:
        spec = BlendSpec.smooth(r, width)
    return [round(spec.alphas(resolutions)[res], 3) for res in resolutions]


BASE_ONLY = BlendSpec.linear(0.0)
TRANSFER_ONLY = BlendSpec.linear(1.0, mapping="transfer")


def render_one(toonifier: Toonifier, spec: BlendSpec, seed: int, psi: float) -> np.ndarray:
    """One seed through the shared engine set to ``spec``, enlarged for display."""
    with toonifier.engine.session(spec) as G:
        return enlarge(to_uint8(render_seeds(G, [int(seed)], psi=float(psi)))[0])


def render_triptych(toonifier: Toonifier, seed: int, psi: float, spec: BlendSpec):
    """base | blend | transfer for one seed, as enlarged uint8 images."""
    return [render_one(toonifier, s, seed, psi) for s in (BASE_ONLY, spec, TRANSFER_ONLY)]


def render_grid(toonifier: Toonifier, seed: int, psi: float, spec: BlendSpec) -> np.ndarray:
    seeds = [int(seed) + i for i in range(1, GRID_SEEDS + 1)]
    with toonifier.engine.session(spec) as G:
        tiles = to_uint8(render_seeds(G, seeds, psi=float(psi)))
    size = max(DISPLAY_SIZE // 2, tiles.shape[1])
    return make_grid(np.stack([enlarge(t, size) for t in tiles]), columns=GRID_SEEDS)


def export_blend(G_base, G_transfer, spec: BlendSpec, suffix: str) -> str:
    """Write the blend to a fresh temporary folder; the file name records the recipe."""
    path = Path(tempfile.mkdtemp(prefix="stylemix-")) / f"stylemix-{spec.describe()}{suffix}"
    formats.save(blend(G_base, G_transfer, spec), path)
    return str(path)


def build_demo(base_path, transfer_path, device: str = "cpu") -> gr.Blocks:
    try:
        G_base = formats.load_generator(base_path, device=device)
        G_transfer = formats.load_generator(transfer_path, device=device)
        toonifier = Toonifier(G_base, G_transfer,
                              discriminator=formats.load_discriminator(base_path, device=device))
        problem = None
    except StylemixError as exc:
        problem = f"Cannot load the model pair: {exc}. Start with --base BASE --transfer TRANSFER."

    with gr.Blocks(title="stylemix", analytics_enabled=False) as demo:
        gr.Markdown("# stylemix — resolution-dependent GAN blending")
        if problem:
            gr.Markdown(f"**{problem}**")
            return demo
        res = G_base.block_resolutions
        gr.Markdown("α per resolution: **0 = base, 1 = transfer**. Low resolutions shape the "
                    "structure (pose, head shape), high ones the texture and rendering.")
        with gr.Row():
            sliders = [gr.Slider(0, 1, value=1.0 if r <= res[len(res) // 2 - 1] else 0.0, step=0.05,
                                 label=f"{r} px", min_width=80) for r in res]
        with gr.Row():
            preset = gr.Dropdown(PRESETS, value=PRESETS[0], label="preset")
            preset_r = gr.Dropdown(res[:-1], value=res[len(res) // 2 - 1], label="swap at / ramp centre (px)")
            preset_alpha = gr.Slider(0, 1, value=0.5, step=0.05, label="linear α")
            preset_width = gr.Slider(0.25, 2, value=0.5, step=0.25, label="ramp width (octaves)")
            apply_preset = gr.Button("apply preset")
            mapping = gr.Radio(["base", "transfer", "blend"], value="base", label="mapping network from")
        with gr.Tab("Blend"):
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="seed", minimum=0)
                new_seed = gr.Button("random seed")
                psi = gr.Slider(0, 1.2, value=0.7, step=0.05, label="truncation ψ")
            with gr.Row():
                triptych = [gr.Image(label=n, type="numpy", format="png")
                            for n in ("base", "blend", "transfer")]
            grid = gr.Image(label=f"blend, the next {GRID_SEEDS} seeds", type="numpy", format="png")
            timing = gr.Markdown()
            with gr.Row():
                export_pkl = gr.Button("export .pkl")
                export_st = gr.Button("export .safetensors")
                exported = gr.File(label="exported blend")
        with gr.Tab("Toonify"):
            latent = gr.State(None)
            with gr.Row():
                photo = gr.Image(label="photo", type="pil", sources=["upload", "webcam"], format="png")
                steps = gr.Slider(20, 1000, value=300, step=10, label="projection steps")
                go = gr.Button("Toonify", variant="primary")
            with gr.Row():
                aligned = gr.Image(label="aligned face", type="numpy", format="png")
                reconstruction = gr.Image(label="reconstruction (base)", type="numpy", format="png")
                toon = gr.Image(label="toonified (blend)", type="numpy", format="png")
            download = gr.File(label="download the result")

        def update_blend(seed_value, psi_value, mapping_value, *alphas):
            try:
                spec = spec_from_sliders(res, alphas, mapping_value)
                start = time.perf_counter()
                blend_img = render_one(toonifier, spec, seed_value, psi_value)
                ms = (time.perf_counter() - start) * 1000
                base_img = render_one(toonifier, BASE_ONLY, seed_value, psi_value)
                transfer_img = render_one(toonifier, TRANSFER_ONLY, seed_value, psi_value)
                grid_img = render_grid(toonifier, seed_value, psi_value, spec)
            except StylemixError as exc:
                raise gr.Error(str(exc))
            return (base_img, blend_img, transfer_img, grid_img,
                    f"slider → image: **{ms:.1f} ms** (recompose + render, {spec.describe()})")

        def save_png(image, label: str) -> str:
            path = Path(tempfile.mkdtemp(prefix="stylemix-")) / f"toonified-{label}.png"
            image.save(path)
            return str(path)

        def run_toonify(photo_value, steps_value, mapping_value, *alphas, progress=gr.Progress()):
            """Show the aligned face at once, then project (with a progress bar) and render."""
            if photo_value is None:
                raise gr.Error("Upload a photo first.")
            spec = spec_from_sliders(res, alphas, mapping_value)
            total = int(steps_value)
            every = max(1, total // 50)  # ~50 progress updates: each one costs a round trip

            def report(step, _total, _loss):
                if step % every == 0 or step == _total:
                    progress((step, _total), desc="projecting into the base model")

            try:
                face = toonifier.align(photo_value)[0]
                if face.faces_in_photo > 1:
                    gr.Info(f"The photo has {face.faces_in_photo} faces; toonifying the largest.")
                yield None, enlarge(face.image), None, None, None
                result = toonifier.project(face.image, ProjectionConfig(steps=total), progress=report)
                base_img = toonifier.render(result, BASE_ONLY)
                toon_img = toonifier.render(result, spec)
            except StylemixError as exc:
                raise gr.Error(str(exc))
            yield (result, enlarge(face.image), enlarge(base_img), enlarge(toon_img),
                   save_png(toon_img, spec.describe()))

        def rerender_toon(result, mapping_value, *alphas):
            if result is None:
                return gr.update(), gr.update()
            spec = spec_from_sliders(res, alphas, mapping_value)
            toon_img = toonifier.render(result, spec)
            return enlarge(toon_img), save_png(toon_img, spec.describe())

        def do_export(suffix):
            def handler(mapping_value, *alphas):
                try:
                    return export_blend(G_base, G_transfer, spec_from_sliders(res, alphas, mapping_value), suffix)
                except StylemixError as exc:
                    raise gr.Error(str(exc))
            return handler

        blend_inputs = [seed, psi, mapping, *sliders]
        for control in blend_inputs:
            control.change(update_blend, blend_inputs, [*triptych, grid, timing],
                           trigger_mode="always_last", api_name=False)
        demo.load(update_blend, blend_inputs, [*triptych, grid, timing], api_name="render_blend")
        for control in [mapping, *sliders]:
            control.change(rerender_toon, [latent, mapping, *sliders], [toon, download],
                           trigger_mode="always_last", api_name=False)
        new_seed.click(lambda: random.randrange(2 ** 31), None, seed, api_name=False)
        apply_preset.click(lambda p, r, a, w: preset_alphas(res, p, int(r), a, w),
                           [preset, preset_r, preset_alpha, preset_width], sliders, api_name="preset")
        export_pkl.click(do_export(".pkl"), [mapping, *sliders], exported, api_name="export_pkl")
        export_st.click(do_export(".safetensors"), [mapping, *sliders], exported,
                        api_name="export_safetensors")
        go.click(run_toonify, [photo, steps, mapping, *sliders],
                 [latent, aligned, reconstruction, toon, download],
                 show_progress_on=[reconstruction, toon], api_name="run_toonify")
        gr.Button("re-render toon", visible=False).click(
            rerender_toon, [latent, mapping, *sliders], [toon, download], api_name="rerender_toon")
    return demo
