"""How well a base draws the teacher's faces for w it never trained on.

    python bench/heldout_teacher.py [MODEL] [--pairs data/ffhq_teacher/val] [--count 256]

For each held-out teacher pair (w, face; tools/build_ffhq_teacher.py, seeds 1,000,000+), the
model renders w in every layer and is compared with the teacher's face at the model's
resolution (box-filtered, as in training): mean PSNR (dB) and SSIM. Two baselines in the same
run: the mean w's face (a generic face) against every teacher face, and each drawing against the
*next* pair's face (another person). Without --pairs (or when the folder is missing) it uses the
four held-out faces in assets/photos, whose w come from the model's own mapping network — which
is FFHQ's for the default base.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import stylemix  # noqa: E402
from stylemix.project import psnr, ssim  # noqa: E402


def shipped_pairs(G) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, faces in [-1, 1]) for assets/photos/heldout_*.png, w from G's mapping of the seed."""
    ws, faces = [], []
    for path in sorted((ROOT / "assets" / "photos").glob("heldout_*.png")):
        seed = int(path.stem.split("_")[1])
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim).astype(np.float32))
        ws.append(G.mapping(z, None, truncation_psi=1)[:, 0])
        face = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float()
        faces.append(F.adaptive_avg_pool2d(face, G.img_resolution) / 127.5 - 1)
    return torch.cat(ws), torch.cat(faces)


def folder_pairs(G, folder: Path, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    from stylemix.train.distill import TeacherPairs
    pairs = TeacherPairs(folder, G.img_resolution)
    n = min(count, len(pairs))
    return pairs.w[:n], pairs.images[:n].float().div(127.5).sub(1)


def mean_scores(images: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    p = [psnr(a[None], b[None]) for a, b in zip(images, targets)]
    s = [ssim(a[None], b[None]).item() for a, b in zip(images, targets)]
    return float(np.mean(p)), float(np.mean(s))


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", default=str(ROOT / "models" / "base.safetensors"))
    parser.add_argument("--pairs", type=Path, default=ROOT / "data" / "ffhq_teacher" / "val")
    parser.add_argument("--count", type=int, default=256)
    args = parser.parse_args()
    G = stylemix.load_generator(args.model)
    if args.pairs.is_dir():
        w, faces = folder_pairs(G, args.pairs, args.count)
        source = f"{len(w)} held-out pairs from {args.pairs}"
    else:
        w, faces = shipped_pairs(G)
        source = f"the {len(w)} held-out faces in assets/photos ({args.pairs} not found)"
    drawn = torch.cat([G.synthesis(w[i:i + 16, None].repeat(1, G.num_ws, 1), noise_mode="const")
                       for i in range(0, len(w), 16)]).clamp(-1, 1)
    generic = G.synthesis(G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1),
                          noise_mode="const").clamp(-1, 1).expand_as(drawn)
    print(f"{Path(args.model).name} ({G.img_resolution} px) on {source}")
    print("| drawing compared with the teacher's face | PSNR dB | SSIM |")
    print("|---|---|---|")
    for label, images, targets in (("own w (the model)", drawn, faces),
                                   ("mean w, a generic face (baseline)", generic, faces),
                                   ("another person's w (baseline)", drawn.roll(1, 0), faces)):
        p, s = mean_scores(images, targets)
        print(f"| {label} | {p:.2f} | {s:.3f} |")


if __name__ == "__main__":
    main()
