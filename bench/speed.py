"""Issue #6's table: every fast path against a plain baseline, measured in the same run.

    python bench/speed.py [--base models/base.safetensors --transfer models/transfer.safetensors]
                          [--skip-projection] [--skip-toonify] [--skip-compile] [--targets 4]
                          [--device cuda] [--repeat 30]
    # the issue's random 1024 px config-f pair on a lent GPU, one short run (a few minutes):
    python bench/speed.py --config-f --device cuda --skip-compile --skip-projection
    # its dry run on a CPU, smallest settings:
    python bench/speed.py --config-f --config-f-resolution 64 --device cpu --repeat 1 \
        --skip-compile --skip-projection --toonify-steps 2

Rows (medians; the device is CUDA when present, else CPU):
* slider → new weights: ``stylemix.blend`` (deep-copy + blended weights, the baseline) against
  the engine rewriting one slider's slice of its flat buffer;
* slider → new image: the same two, each followed by a batch-1 render;
* images/s at batch 1 and 8: the eager float32 network (baseline) against ``torch.compile`` of
  the same synthesis network (and bf16 autocast), with the largest pixel error against float32 —
  after a slider change, so a compiled graph that had frozen the weights would show up as error;
* fp16 path: the model's half-precision blocks (``num_fp16_res``, which a GPU render takes)
  against ``force_fp32=True`` on 4 seeds, error and speed, with the bar the test suite sets
  (mean |error| < 0.02, max < 0.25); on a CPU the same path is forced (``half_on_cpu``), slowly;
* projection per face: the usual recipe, 1000 W steps (baseline), against stylemix's default
  (300 W steps with early stop) and a short W + W+ schedule, with PSNR / SSIM reached;
* toonify end to end (align → project → blend render) with the default recipe.

Projection targets: samples of the base model (seeds 100…, ψ 0.7: the true latent exists) and
scikit-image's astronaut photo aligned to the model's resolution.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from stylemix import BlendSpec  # noqa: E402
from stylemix.align import align  # noqa: E402
from stylemix.engine import BlendEngine  # noqa: E402
from stylemix.project import (ProjectionConfig, image_to_tensor, project, psnr,  # noqa: E402
                              render_latent, ssim)
from stylemix.render import render_seeds  # noqa: E402
from stylemix.toonify import Toonifier  # noqa: E402
from random_pair import random_pair  # noqa: E402  (bench/ is on sys.path)
from timing import median_ms  # noqa: E402  (bench/ is on sys.path)




def row(label: str, value: str, baseline: str = "", note: str = ""):
    print(f"| {label} | {baseline} | {value} | {note} |")


def bench_sliders(A, B, repeat: int):
    res = A.block_resolutions
    one = res[len(res) // 2]
    counter = iter(range(10 ** 9))
    z = torch.randn(1, A.z_dim, device=A.mapping.w_avg.device)

    def alphas():
        return {r: 1.0 if r <= 16 else 0.0 for r in res} | {one: (next(counter) % 10) / 10}

    def baseline_weights():
        return stylemix.blend(A, B, BlendSpec.per_resolution(alphas()))

    engine = BlendEngine(A, B)

    def engine_weights():
        engine.set_alphas(alphas())

    def baseline_image():
        G = baseline_weights()
        with torch.no_grad():
            G.synthesis(G.mapping(z, truncation_psi=0.7))

    def engine_image():
        with engine.session(alphas()) as G, torch.no_grad():
            G.synthesis(G.mapping(z, truncation_psi=0.7))

    w_base, w_fast = median_ms(baseline_weights, repeat), median_ms(engine_weights, repeat)
    i_base, i_fast = median_ms(baseline_image, repeat), median_ms(engine_image, repeat)
    row(f"slider ({one} px) → new weights, ms", f"{w_fast:.3f}", f"{w_base:.3f}", f"{w_base / w_fast:.0f}× faster")
    row("slider → new image (batch 1), ms", f"{i_fast:.2f}", f"{i_base:.2f}", f"{i_base / i_fast:.1f}× faster")
    return engine, i_base, engine_image


def bench_throughput(engine: BlendEngine, compile_it: bool, repeat: int):
    G = engine.generator
    device = G.mapping.w_avg.device
    res = engine.resolutions
    engine.set_spec(BlendSpec.swap(16))
    compiled, compile_seconds = None, 0.0
    if compile_it:
        t = time.perf_counter()
        compiled = torch.compile(G.synthesis, dynamic=False)
        with torch.no_grad():
            for batch in (1, 8):
                compiled(torch.zeros(batch, G.num_ws, G.w_dim, device=device))
        compile_seconds = time.perf_counter() - t
    # Change a slider after compiling: the compiled graph must read the new weights.
    engine.set_alphas({r: (0.3 if r == res[1] else 1.0 if r <= 16 else 0.0) for r in res})
    for batch in (1, 8):
        z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(batch)).to(device)
        with torch.no_grad():
            ws = G.mapping(z, truncation_psi=0.7)
            reference = G.synthesis(ws)
            eager_ms = median_ms(lambda: G.synthesis(ws), repeat)
            variants = []
            if compiled is not None:
                err = (compiled(ws) - reference).abs().max().item()
                variants.append(("torch.compile", median_ms(lambda: compiled(ws), repeat), err))
            dtype = torch.bfloat16
            with torch.autocast(device.type, dtype=dtype):
                err = (G.synthesis(ws).float() - reference).abs().max().item()
                variants.append(("bf16 autocast", median_ms(lambda: G.synthesis(ws), repeat), err))
        eager_ips = batch * 1000 / eager_ms
        for name, ms, err in variants:
            ips = batch * 1000 / ms
            row(f"images/s, batch {batch}: {name}", f"{ips:.3g}", f"{eager_ips:.3g} (eager fp32)",
                f"{ips / eager_ips:.2f}×; max |error| vs fp32 {err:.1e}")
    if compiled is not None:
        print(f"\ntorch.compile took {compile_seconds:.0f} s (batch 1 and 8; cached compiles are faster)")


def bench_fp16(engine: BlendEngine, repeat: int):
    G = engine.generator
    device = G.mapping.w_avg.device
    blocks = [b for b in G.synthesis.children() if getattr(b, "use_fp16", False)]
    if not blocks:
        row("fp16 blocks vs float32", "–", "–", "this model has no fp16 blocks (num_fp16_res 0)")
        return
    forced = device.type != "cuda"
    for block in blocks:
        block.half_on_cpu = forced  # the CUDA path, run on the CPU
    z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(4)).to(device)
    try:
        with torch.no_grad():
            ws = G.mapping(z, truncation_psi=0.7)
            full = G.synthesis(ws, force_fp32=True)
            half = G.synthesis(ws)
            err = (half - full).abs()
            ms_full = median_ms(lambda: G.synthesis(ws, force_fp32=True), repeat)
            ms_half = median_ms(lambda: G.synthesis(ws), repeat)
    finally:
        for block in blocks:
            block.half_on_cpu = False
    ok = torch.isfinite(half).all() and err.mean() < 0.02 and err.max() < 0.25
    row(f"fp16 blocks (≥ {blocks[0].resolution} px) vs float32, batch 4, ms", f"{ms_half:.2f}",
        f"{ms_full:.2f} (force_fp32)",
        f"max |error| {err.max():.1e}, mean {err.mean():.1e}: {'PASS' if ok else 'FAIL'}"
        f"{' (forced on CPU)' if forced else ''}")


def bench_toonify(A, B, steps: int | None = None):
    from skimage import data
    toonifier = Toonifier(A, B)
    config = ProjectionConfig() if steps is None else ProjectionConfig(steps=steps)
    t = time.perf_counter()
    toonifier.toonify(data.astronaut(), BlendSpec.swap(16), config)
    recipe = "default projection" if steps is None else f"{steps} projection steps (NOT the default)"
    print(f"\ntoonify end to end (align, {recipe}, swap16 render, {A.img_resolution} px): "
          f"{time.perf_counter() - t:.1f} s")


def bench_projection(A, B, targets: int):
    from skimage import data
    items = [(f"base seed {s}", render_seeds(A, [s], psi=0.7)) for s in range(100, 100 + targets)]
    photo = align(data.astronaut(), output_size=A.img_resolution)[0].image
    items.append(("astronaut photo", image_to_tensor(photo).to(A.mapping.w_avg.device)))
    recipes = [
        ("1000 W steps (baseline)", ProjectionConfig(steps=1000, early_stop_patience=10 ** 9)),
        ("default: 300 W, early stop", ProjectionConfig()),
        ("short: 100 W + 50 W+", ProjectionConfig(steps=100, w_plus_steps=50, early_stop_patience=10 ** 9)),
    ]
    print("\n| target | recipe | steps run | PSNR dB | SSIM | s |\n|---|---|---|---|---|---|")
    totals = {name: [0.0, 0.0, 0.0] for name, _ in recipes}
    for label, target in items:
        for name, cfg in recipes:
            t = time.perf_counter()
            result = project(A, target, cfg)
            seconds = time.perf_counter() - t
            rec = render_latent(A, result)
            p, s = psnr(rec, target), ssim(rec.clamp(-1, 1), target).item()
            steps = result.history[-1]["step"]
            print(f"| {label} | {name} | {steps} | {p:.2f} | {s:.3f} | {seconds:.1f} |")
            for i, v in enumerate((p, s, seconds)):
                totals[name][i] += v / len(items)
    print("\n| recipe | mean PSNR dB | mean SSIM | mean s per face |\n|---|---|---|---|")
    for name, (p, s, sec) in totals.items():
        print(f"| {name} | {p:.2f} | {s:.3f} | {sec:.1f} |")


def config_f_pair(device: str, resolution: int = 1024):
    """The issue's 30.4 M-parameter 1024 px generator with random weights, and a "fine-tuned"
    copy (every parameter nudged), on ``device``."""
    cfg = stylemix.GeneratorConfig(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution,
                                   channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256)
    A, B = random_pair(cfg)
    return A.to(device), B.to(device)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default=str(ROOT / "models" / "base.safetensors"))
    parser.add_argument("--transfer", default=str(ROOT / "models" / "transfer.safetensors"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--targets", type=int, default=4, help="base-model samples to project")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--skip-projection", action="store_true",
                        help="skip the projection table (toonify end to end still runs)")
    parser.add_argument("--skip-toonify", action="store_true")
    parser.add_argument("--toonify-steps", type=int, default=None,
                        help="projection steps of the toonify row (default: the library's; "
                             "fewer only for a quick dry run)")
    parser.add_argument("--config-f", action="store_true",
                        help="a random-weight 1024 px config-f pair (z=w=512, 8 mapping layers, "
                             "channel_base 32768, channel_max 512) instead of the files")
    parser.add_argument("--config-f-resolution", type=int, default=1024,
                        help="image size of the --config-f pair (smaller for a CPU dry run)")
    args = parser.parse_args()
    if args.config_f:
        A, B = config_f_pair(args.device, args.config_f_resolution)
        args.base, args.transfer = "config-f base (random)", "config-f transfer (base + 1% noise)"
    else:
        A = stylemix.load_generator(args.base, device=args.device)
        B = stylemix.load_generator(args.transfer, device=args.device)
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"CPU, {torch.get_num_threads()} threads"
    n = sum(p.numel() for p in A.parameters())
    print(f"{Path(args.base).name} + {Path(args.transfer).name}: {n / 1e6:.2f} M parameters, "
          f"{A.img_resolution} px; {where}; torch {torch.__version__}\n")
    print("| measure | baseline | stylemix | note |\n|---|---|---|---|")
    engine, i_base, engine_image = bench_sliders(A, B, args.repeat)
    if not args.skip_compile:
        engine.compile()  # what `python app.py --compile` does
        ms = median_ms(engine_image, args.repeat)
        row("slider → new image, compiled engine, ms", f"{ms:.2f}", f"{i_base:.2f}",
            f"{i_base / ms:.1f}× faster ({'compiled' if engine.compiled else 'compile failed: eager'})")
        engine = BlendEngine(A, B)
    bench_throughput(engine, not args.skip_compile, args.repeat)
    bench_fp16(engine, args.repeat)
    if not args.skip_projection:
        bench_projection(A, B, args.targets)
    if not args.skip_toonify:
        bench_toonify(A, B, args.toonify_steps)


if __name__ == "__main__":
    main()
