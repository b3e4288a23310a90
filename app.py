"""stylemix web app (minimal page): base | blend | transfer for a seed and a layer swap.

    python app.py [--base P --transfer P --device D --host H --port N --share]

A thin layer over the library; the full app (per-resolution sliders, uploads, export) builds
on the same functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gradio as gr
import numpy as np
import torch

import stylemix
from stylemix.render import render_seeds, to_pil, to_uint8

MODELS = Path(__file__).resolve().parent / "models"
DEFAULT_BASE = MODELS / "base.safetensors"
DEFAULT_TRANSFER = MODELS / "transfer.safetensors"
DISPLAY_SIZE = 256  # small models are enlarged with nearest-neighbour to at least this


def render_triptych(G_base, G_transfer, seed: int, psi: float, r_swap: int, low: str):
    """Three uint8 HWC images (base, blend, transfer), enlarged for display."""
    spec = stylemix.BlendSpec.swap(int(r_swap), low=low)
    blended = stylemix.blend(G_base, G_transfer, spec)
    scale = max(1, DISPLAY_SIZE // G_base.img_resolution)
    with torch.no_grad():
        return [np.asarray(to_pil(to_uint8(render_seeds(G, [int(seed)], psi=psi))[0], scale))
                for G in (G_base, blended, G_transfer)]


def build_demo(base_path, transfer_path, device: str = "cpu") -> gr.Blocks:
    problem, G_base, G_transfer = None, None, None
    try:
        G_base = stylemix.load_generator(base_path, device=device)
        G_transfer = stylemix.load_generator(transfer_path, device=device)
        stylemix.check_compatible(G_base, G_transfer)
    except stylemix.StylemixError as exc:
        problem = f"Cannot load the model pair: {exc}. Start with --base BASE --transfer TRANSFER."

    with gr.Blocks(title="stylemix") as demo:
        gr.Markdown("# stylemix — resolution-dependent GAN blending")
        if problem:
            gr.Markdown(f"**{problem}**")
            return demo
        swaps = G_base.block_resolutions[:-1]
        with gr.Row():
            seed = gr.Number(value=0, precision=0, label="seed", minimum=0)
            psi = gr.Slider(0, 1.2, value=0.7, step=0.05, label="truncation ψ")
            r_swap = gr.Dropdown(swaps, value=swaps[len(swaps) // 2], label="swap at (px)")
            low = gr.Radio(["transfer", "base"], value="transfer", label="low resolutions from")
        with gr.Row():
            outputs = [gr.Image(label=name, type="numpy") for name in ("base", "blend", "transfer")]

        def update(seed_value, psi_value, r_value, low_value):
            try:
                return render_triptych(G_base, G_transfer, seed_value, psi_value, r_value, low_value)
            except stylemix.StylemixError as exc:
                raise gr.Error(str(exc))

        inputs = [seed, psi, r_swap, low]
        for control in inputs:
            control.change(update, inputs, outputs)
        demo.load(update, inputs, outputs)
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
    demo.launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
