"""stylemix web app: blend a model pair by resolution, and toonify a photo with the blend.

    python app.py [--base P --transfer P --device D --host H --port N --share]

A thin layer over the library: one shared BlendEngine recomposes the weights for each request,
and each browser session keeps its own controls and projected face in Gradio state.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
import torch

import stylemix
from stylemix.project import ProjectionConfig
from stylemix.render import render_seeds, to_pil, to_uint8
from stylemix.toonify import Toonifier

MODELS = Path(__file__).resolve().parent / "models"
DEFAULT_BASE = MODELS / "base.safetensors"
DEFAULT_TRANSFER = MODELS / "transfer.safetensors"
DISPLAY_SIZE = 256  # small models are enlarged with nearest-neighbour to at least this


def enlarge(image) -> np.ndarray:
    """Nearest-neighbour enlargement to ≥ DISPLAY_SIZE, so 64 px images stay crisp."""
    arr = np.asarray(image)
    scale = max(1, DISPLAY_SIZE // arr.shape[0])
    return np.asarray(to_pil(arr, scale))


def render_triptych(toonifier: Toonifier, seed: int, psi: float, spec: stylemix.BlendSpec):
    """base | blend | transfer for one seed, as enlarged uint8 images."""
    images = []
    for s in (stylemix.BlendSpec.linear(0.0), spec, stylemix.BlendSpec.linear(1.0, mapping="transfer")):
        with toonifier.engine.session(s) as G:
            images.append(enlarge(to_uint8(render_seeds(G, [int(seed)], psi=float(psi)))[0]))
    return images


def spec_from_controls(r_swap, low) -> stylemix.BlendSpec:
    return stylemix.BlendSpec.swap(int(r_swap), low=low)


def build_demo(base_path, transfer_path, device: str = "cpu") -> gr.Blocks:
    try:
        G_base = stylemix.load_generator(base_path, device=device)
        G_transfer = stylemix.load_generator(transfer_path, device=device)
        toonifier = Toonifier(G_base, G_transfer,
                              discriminator=stylemix.formats.load_discriminator(base_path, device=device))
        problem = None
    except stylemix.StylemixError as exc:
        problem = f"Cannot load the model pair: {exc}. Start with --base BASE --transfer TRANSFER."

    with gr.Blocks(title="stylemix") as demo:
        gr.Markdown("# stylemix — resolution-dependent GAN blending")
        if problem:
            gr.Markdown(f"**{problem}**")
            return demo
        swaps = G_base.block_resolutions[:-1]
        with gr.Row():
            r_swap = gr.Dropdown(swaps, value=swaps[len(swaps) // 2], label="swap at (px)")
            low = gr.Radio(["transfer", "base"], value="transfer", label="low resolutions from")
        with gr.Tab("Blend"):
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="seed", minimum=0)
                psi = gr.Slider(0, 1.2, value=0.7, step=0.05, label="truncation ψ")
            with gr.Row():
                triptych = [gr.Image(label=n, type="numpy") for n in ("base", "blend", "transfer")]
        with gr.Tab("Toonify"):
            latent = gr.State(None)
            with gr.Row():
                photo = gr.Image(label="photo", type="pil", sources=["upload", "webcam"])
                steps = gr.Slider(20, 1000, value=300, step=10, label="projection steps")
                go = gr.Button("Toonify", variant="primary")
            with gr.Row():
                aligned = gr.Image(label="aligned face", type="numpy")
                reconstruction = gr.Image(label="reconstruction (base)", type="numpy")
                toon = gr.Image(label="toonified (blend)", type="numpy")
            download = gr.File(label="download the result")

        def update_blend(seed_value, psi_value, r_value, low_value):
            try:
                return render_triptych(toonifier, seed_value, psi_value, spec_from_controls(r_value, low_value))
            except stylemix.StylemixError as exc:
                raise gr.Error(str(exc))

        def save_png(image, label: str) -> str:
            path = Path(tempfile.mkdtemp(prefix="stylemix-")) / f"toonified-{label}.png"
            image.save(path)
            return str(path)

        def run_toonify(photo_value, steps_value, r_value, low_value, progress=gr.Progress()):
            """Show the aligned face at once, then project (with a progress bar) and render."""
            if photo_value is None:
                raise gr.Error("Upload a photo first.")
            spec = spec_from_controls(r_value, low_value)
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
                base_img = toonifier.render(result, stylemix.BlendSpec.linear(0.0))
                toon_img = toonifier.render(result, spec)
            except stylemix.StylemixError as exc:
                raise gr.Error(str(exc))
            yield (result, enlarge(face.image), enlarge(base_img), enlarge(toon_img),
                   save_png(toon_img, spec.describe()))

        def rerender_toon(result, r_value, low_value):
            if result is None:
                return gr.update(), gr.update()
            spec = spec_from_controls(r_value, low_value)
            toon_img = toonifier.render(result, spec)
            return enlarge(toon_img), save_png(toon_img, spec.describe())

        blend_inputs = [seed, psi, r_swap, low]
        for control in blend_inputs:
            control.change(update_blend, blend_inputs, triptych)
        for control in (r_swap, low):
            control.change(rerender_toon, [latent, r_swap, low], [toon, download])
        go.click(run_toonify, [photo, steps, r_swap, low],
                 [latent, aligned, reconstruction, toon, download],
                 show_progress_on=[reconstruction, toon])
        demo.load(update_blend, blend_inputs, triptych)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description="stylemix web app")
    parser.add_argument("--base", default=str(DEFAULT_BASE))
    parser.add_argument("--transfer", default=str(DEFAULT_TRANSFER))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also open a public Gradio link")
    args = parser.parse_args()
    demo = build_demo(args.base, args.transfer, args.device)
    demo.queue().launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
