"""CPU render speed: stylemix's StyleGAN2 generator against NVIDIA's own code, same weights,
same process, same threads (issue #16, point 2).

    python bench/render_cpu.py [--nvidia-ref data/nvidia_ref] [--threads 1] [--repeat 5]
                               [--batches 1,4] [--resolution 256]

Builds a random-weight config-f network (z = w = 512, 8 mapping layers, channel_base 32768,
channel_max 512, ``skip``, num_fp16_res 4, conv_clamp 256; biases, noise strengths and w_avg
random too, so every path of the network matters), loads the same state dict into NVIDIA's
stylegan2-ada-pytorch ``Generator`` and into stylemix's, checks that both render the same
images (max |difference| ≤ 1e-4), then times ``G(z)`` (mapping + synthesis, ψ 0.7, constant
noise) for both in turns, one call each per round, so both see the same background load.
NVIDIA's network runs with ``force_fp32=True``: on a CPU its fp16 blocks would run half-precision
convolutions, which is neither what its authors intended nor a fair comparison. The bf16 row
is stylemix's opt-in preview (``precision="bf16"``), with its largest error against float32.

NVIDIA's code is not part of stylemix (its licence is non-commercial): put a checkout of
NVlabs/stylegan2-ada-pytorch (or the files ``training/networks.py``, ``torch_utils/`` and
``dnnlib/`` from it) at ``--nvidia-ref``; ``data/`` is git-ignored. Without it the bench still
prints stylemix's own figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from timing import interleaved_medians_ms  # noqa: E402  (bench/ is on sys.path)

TOLERANCE = 1e-4
NVIDIA_FILES = ["training/networks.py", "torch_utils/misc.py", "torch_utils/persistence.py",
                "torch_utils/custom_ops.py", "torch_utils/ops/bias_act.py",
                "torch_utils/ops/upfirdn2d.py", "torch_utils/ops/conv2d_resample.py",
                "torch_utils/ops/conv2d_gradfix.py", "torch_utils/ops/fma.py",
                "dnnlib/__init__.py"]


def config_f(resolution: int) -> stylemix.GeneratorConfig:
    return stylemix.GeneratorConfig(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution,
                                    channel_base=32768, channel_max=512, mapping_layers=8,
                                    architecture="skip", num_fp16_res=4, conv_clamp=256)


def random_generator(cfg: stylemix.GeneratorConfig) -> stylemix.Generator:
    torch.manual_seed(0)
    G = stylemix.Generator(cfg).eval().requires_grad_(False)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.normal_()
    return G


def nvidia_generator(path: Path, cfg: stylemix.GeneratorConfig, state: dict):
    """NVIDIA's Generator from the checkout at ``path`` with ``state`` loaded, or None."""
    missing = [f for f in NVIDIA_FILES if not (path / f).is_file()]
    if missing:
        print(f"NVIDIA's code not found at {path} (missing {', '.join(missing[:3])}"
              f"{' …' if len(missing) > 3 else ''}). To compare against it, put a checkout of "
              f"NVlabs/stylegan2-ada-pytorch there (its training/, torch_utils/ and dnnlib/ "
              f"folders are what is imported; keep it out of git: NVIDIA's licence is "
              f"non-commercial). Printing stylemix's own figures only.\n")
        return None
    sys.path.insert(0, str(path))
    from training.networks import Generator  # NVIDIA's

    G = Generator(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim,
                  img_resolution=cfg.img_resolution, img_channels=cfg.img_channels,
                  mapping_kwargs=dict(num_layers=cfg.mapping_layers),
                  synthesis_kwargs=dict(channel_base=cfg.channel_base,
                                        channel_max=cfg.channel_max,
                                        num_fp16_res=cfg.num_fp16_res,
                                        conv_clamp=cfg.conv_clamp,
                                        architecture=cfg.architecture))
    G.load_state_dict(state)
    return G.eval().requires_grad_(False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvidia-ref", type=Path, default=ROOT / "data" / "nvidia_ref")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per batch size")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--resolution", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = config_f(args.resolution)
    ours = random_generator(cfg)
    nvidia = nvidia_generator(args.nvidia_ref, cfg, ours.state_dict())
    n_params = sum(p.numel() for p in ours.parameters())
    print(f"random config-f {cfg.img_resolution} px, {n_params / 1e6:.2f} M parameters; CPU, "
          f"{torch.get_num_threads()} thread(s); torch {torch.__version__}; G(z), ψ 0.7, "
          f"const noise; medians of {args.repeat} interleaved rounds\n")
    print("| batch | NVIDIA ms/image | stylemix ms/image | ratio | stylemix bf16 ms/image "
          "| bf16 ratio | max |Δ| vs NVIDIA | bf16 max |Δ| vs float32 |")
    print("|---|---|---|---|---|---|---|---|")
    failed = False
    for batch in [int(b) for b in args.batches.split(",")]:
        z = torch.randn(batch, cfg.z_dim, generator=torch.Generator().manual_seed(batch))
        calls = {
            "ours": lambda: ours(z, truncation_psi=0.7, noise_mode="const"),
            "bf16": lambda: ours.synthesis(ours.mapping(z, truncation_psi=0.7), precision="bf16"),
        }
        with torch.no_grad():
            img = calls["ours"]()
            bf16_err = (calls["bf16"]() - img).abs().max().item()
            err = float("nan")
            if nvidia is not None:
                calls["nvidia"] = lambda: nvidia(z, None, truncation_psi=0.7, noise_mode="const",
                                                 force_fp32=True)
                err = (calls["nvidia"]() - img).abs().max().item()
                failed |= not err <= TOLERANCE
            ms = interleaved_medians_ms(calls, args.repeat)
        per = {name: t / batch for name, t in ms.items()}
        nv = per.get("nvidia")
        cols = [f"{nv:.0f}" if nv else "–", f"{per['ours']:.0f}",
                f"{per['ours'] / nv:.2f}" if nv else "–", f"{per['bf16']:.0f}",
                f"{per['bf16'] / nv:.2f}" if nv else "–", f"{err:.1e}" if nv else "–",
                f"{bf16_err:.1e}"]
        print(f"| {batch} | " + " | ".join(cols) + " |", flush=True)
    if failed:
        print(f"\nFAILED: the images differ from NVIDIA's by more than {TOLERANCE}")
        sys.exit(1)


if __name__ == "__main__":
    main()
