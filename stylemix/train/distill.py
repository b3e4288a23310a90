"""Distillation: train a StyleGAN2 synthesis network to redraw a teacher's face for each w.

A teacher generator (e.g. FFHQ StyleGAN2, or a network distilled from it) gives pairs
(w, image). A student that copies the teacher's mapping network and learns ``synthesis(w) ≈
teacher(w)`` lives in the teacher's latent space: the same z gives the same w and the same
person, so projection, truncation and seeds mean what they mean for the teacher. The losses are
per-pixel L1 plus multi-scale structural similarity (no downloaded perceptual weights), and
optionally the trainer's adversarial loss (non-saturating, lazy R1) for sharpness, with the
teacher's images as the reals — the recipe of MobileStyleGAN (Belousov 2021) minus its
perceptual term.

Pairs are stored by ``tools/build_ffhq_teacher.py`` as ``chunk_*.npz`` files (``w`` (N, w_dim)
float32, ``img`` (N, C, R, R) uint8); a held-out folder of the same kind scores every snapshot
(PSNR and SSIM at the model's resolution). Checkpoints hold only tensors and numbers, read back
with weights-only loading; running the same command again resumes, and picks up chunks the data
builder has added since.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ModelLoadError, StylemixError
from ..formats import native
from ..io import atomic_write
from ..networks import Generator, GeneratorConfig
from ..networks.discriminator import Discriminator, DiscriminatorConfig
from ..project import multiscale_ssim_loss, psnr, ssim
from .dataset import DatasetError

CHECKPOINT_TAG = "stylemix-distill"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
GENERATOR_NAME = "generator.safetensors"
METRICS_NAME = "metrics.jsonl"


# --- data ----------------------------------------------------------------------------------
def box_downsample(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """(N, C, H, H) → (N, C, R, R) by averaging each (H/R)² block: the box filter the pairs
    were made with, so downsampling composes exactly."""
    size = images.shape[-1]
    if size == resolution:
        return images
    if size % resolution:
        raise DatasetError(f"pairs are {size} px, which does not box-downsample to {resolution} px")
    return F.avg_pool2d(images, size // resolution)


class TeacherPairs:
    """Every ``chunk_*.npz`` of a folder: ``w`` (N, w_dim) float32 and ``img`` uint8 (N, C, R, R)
    at ``resolution`` (box-downsampled on load when stored larger). ``refresh`` adds chunks
    written since the last look, so training can start while the data builder runs."""

    def __init__(self, folder: str | os.PathLike, resolution: int):
        self.folder, self.resolution = Path(folder), int(resolution)
        if not self.folder.is_dir():
            raise DatasetError(f"no such folder of teacher pairs: {self.folder}")
        self._loaded: list[str] = []
        self.w = torch.zeros(0)
        self.images = torch.zeros(0, dtype=torch.uint8)
        self.refresh()
        if not len(self):
            raise DatasetError(f"{self.folder} holds no chunk_*.npz teacher pairs")

    def refresh(self) -> int:
        """Load chunks not seen yet; returns how many pairs were added."""
        new = [p for p in sorted(self.folder.glob("chunk_*.npz")) if p.name not in self._loaded
               and not p.name.endswith(".tmp.npz")]
        ws, images = [self.w] if len(self._loaded) else [], [self.images] if len(self._loaded) else []
        added = 0
        for path in new:
            try:
                with np.load(path, allow_pickle=False) as chunk:
                    w = torch.from_numpy(chunk["w"].astype(np.float32))
                    img = torch.from_numpy(chunk["img"])
            except (OSError, ValueError, KeyError) as exc:
                raise DatasetError(f"{path.name} is not a teacher-pair chunk ({exc})") from None
            if img.dtype != torch.uint8 or img.ndim != 4 or w.ndim != 2 or len(w) != len(img):
                raise DatasetError(f"{path.name}: expected w (N, w_dim) and uint8 img (N, C, R, R)")
            img = box_downsample(img.float(), self.resolution).round().to(torch.uint8)
            ws.append(w)
            images.append(img)
            self._loaded.append(path.name)
            added += len(w)
        if added:
            self.w, self.images = torch.cat(ws), torch.cat(images)
        return added

    def __len__(self) -> int:
        return len(self.w)

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(w (size, w_dim), images in [-1, 1]) drawn at random. Never flipped: a mirrored face
        is not the teacher's image for that w."""
        idx = torch.randint(len(self), (size,), generator=generator)
        return self.w[idx], self.images[idx].float().div(127.5).sub(1)


# --- student ---------------------------------------------------------------------------------
def read_mapping(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``mapping.*`` tensors (NVIDIA names) of a .safetensors file, or of any model file
    stylemix loads. Raises StylemixError when there are none."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(f"{path.name} is not a readable safetensors file ({exc})") from None
    else:
        from .. import formats
        tensors = formats.load_generator(path).state_dict()
    mapping = {k: v.float() for k, v in tensors.items() if k.startswith("mapping.")}
    if not any(k.endswith(".weight") for k in mapping):
        raise StylemixError(f"{path.name} holds no mapping network (mapping.fc*.weight)")
    return mapping


def student_config(mapping: dict[str, torch.Tensor], resolution: int,
                   channels: dict[int, int]) -> GeneratorConfig:
    """A skip-architecture StyleGAN2 whose mapping has the shapes of ``mapping``."""
    layers = sorted(int(k.split(".")[1][2:]) for k in mapping
                    if k.startswith("mapping.fc") and k.endswith(".weight"))
    if layers != list(range(len(layers))):
        raise StylemixError("the mapping network's layers are not fc0 … fcN")
    first, last = mapping["mapping.fc0.weight"], mapping[f"mapping.fc{layers[-1]}.weight"]
    return GeneratorConfig(z_dim=first.shape[1], c_dim=0, w_dim=last.shape[0],
                           img_resolution=resolution, mapping_layers=len(layers),
                           layer_features=first.shape[0], channels=dict(channels),
                           architecture="skip")


def make_student(mapping: dict[str, torch.Tensor], resolution: int,
                 channels: dict[int, int], seed: int = 0) -> Generator:
    """A fresh student with the teacher's mapping network (and w_avg, when given) copied in."""
    torch.manual_seed(seed)
    G = Generator(student_config(mapping, resolution, channels))
    state = G.state_dict()
    for name, value in mapping.items():
        if name not in state or state[name].shape != value.shape:
            raise StylemixError(f"mapping tensor '{name}' {list(value.shape)} does not fit the student")
        state[name].copy_(value)
    if "mapping.w_avg" not in mapping:
        G.estimate_w_avg(100_000)
    return G


def parse_channels(text: str) -> dict[int, int]:
    """'4:256,8:256,16:128' → {4: 256, 8: 256, 16: 128}."""
    try:
        out = {int(r): int(c) for r, c in (part.split(":") for part in text.split(","))}
    except ValueError:
        raise StylemixError(f"--channels wants RES:COUNT pairs like 4:256,8:128, not '{text}'") from None
    if any(c < 1 for c in out.values()):
        raise StylemixError("every channel count must be at least 1")
    return out


# --- training ----------------------------------------------------------------------------------
@dataclass
class DistillConfig:
    batch: int = 8
    kimg: float = 100.0
    lr: float = 0.002
    l1_weight: float = 1.0
    ssim_weight: float = 1.0
    adv_weight: float = 0.0         # adversarial term for G; 0 = pure regression
    adv_start_kimg: float = 0.0     # switch the adversarial term on from here
    d_lr: float = 0.002
    r1_gamma: float | None = None   # None: 0.0002 · res² / batch
    r1_interval: int = 16
    ema_kimg: float = 2.0
    seed: int = 0
    snapshot_kimg: float = 5.0
    log_every: int = 25
    val_count: int = 64             # held-out pairs scored at each snapshot

    def gamma_for(self, resolution: int) -> float:
        return self.r1_gamma if self.r1_gamma is not None else 0.0002 * resolution ** 2 / self.batch


@dataclass
class DistillState:
    nimg: int = 0
    step: int = 0
    seconds: float = 0.0
    history: list = field(default_factory=list)


@torch.no_grad()
def score(G: Generator, pairs: TeacherPairs, count: int, batch: int = 16) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of ``G``'s renders of the first ``count`` held-out w against
    the teacher's images, at the model's resolution."""
    device = G.mapping.w_avg.device
    p_sum = s_sum = 0.0
    n = min(count, len(pairs))
    for lo in range(0, n, batch):
        w = pairs.w[lo:min(lo + batch, n)].to(device)
        target = pairs.images[lo:lo + len(w)].float().div(127.5).sub(1).to(device)
        img = G.synthesis(w[:, None].repeat(1, G.num_ws, 1), noise_mode="const").clamp(-1, 1)
        for a, b in zip(img, target):
            p_sum += psnr(a[None], b[None])
            s_sum += ssim(a[None], b[None]).item()
    return {"psnr": p_sum / n, "ssim": s_sum / n}


class Distiller:
    """Student G (synthesis trained, mapping frozen), its EMA, and optionally a discriminator."""

    def __init__(self, G: Generator, data: TeacherPairs, config: DistillConfig,
                 out_dir: str | os.PathLike, val: TeacherPairs | None = None,
                 G_ema: Generator | None = None, D: Discriminator | None = None,
                 device: str = "cpu", log: Callable[[str], None] = print):
        if data.resolution != G.img_resolution:
            raise StylemixError(f"pairs are {data.resolution} px but the student makes {G.img_resolution} px")
        if data.w.shape[1] != G.w_dim:
            raise StylemixError(f"pairs hold w of {data.w.shape[1]} values, the student's w has {G.w_dim}")
        if data.images.shape[1] != G.img_channels:
            raise StylemixError(f"pairs have {data.images.shape[1]} colour channels, the student "
                                f"{G.img_channels}")
        if config.adv_weight > 0 and config.batch % 4:
            raise StylemixError("with the adversarial term, batch must be a multiple of 4")
        self.config, self.data, self.val, self.device, self.log = config, data, val, device, log
        self.out_dir = Path(out_dir)
        self.G = G.to(device).train().requires_grad_(False)
        self.G_ema = (G_ema if G_ema is not None else copy.deepcopy(G)).to(device).eval()
        self.G_ema.requires_grad_(False)
        self.G_ema.source = self.G_ema.blend_info = None
        self.G_opt = torch.optim.Adam(self.G.synthesis.parameters(), lr=config.lr, betas=(0.9, 0.99), eps=1e-8)
        self.D = D
        if config.adv_weight > 0 and self.D is None:
            from .loop import matching_discriminator_config
            self.D = Discriminator(matching_discriminator_config(G.config))
        if self.D is not None:
            self.D = self.D.to(device).train().requires_grad_(False)
            ratio = config.r1_interval / (config.r1_interval + 1)
            self.D_opt = torch.optim.Adam(self.D.parameters(), lr=config.d_lr * ratio,
                                          betas=(0.0, 0.99 ** ratio), eps=1e-8)
        self.gamma = config.gamma_for(G.img_resolution)
        self.state = DistillState()
        self.rng = torch.Generator().manual_seed(config.seed)

    def _ws(self, w: torch.Tensor) -> torch.Tensor:
        return w.to(self.device)[:, None].repeat(1, self.G.num_ws, 1)

    def _adversarial(self) -> bool:
        cfg = self.config
        return self.D is not None and cfg.adv_weight > 0 and self.state.nimg >= cfg.adv_start_kimg * 1000

    def step(self) -> dict[str, float]:
        """One step: G on L1 + multi-scale SSIM (+ adversarial), then D when adversarial."""
        cfg = self.config
        w, target = self.data.batch(cfg.batch, self.rng)
        target = target.to(self.device)
        self.G.synthesis.requires_grad_(True)
        img = self.G.synthesis(self._ws(w), noise_mode="const")
        l1 = (img - target).abs().mean()
        structure = multiscale_ssim_loss(img, target)
        loss = cfg.l1_weight * l1 + cfg.ssim_weight * structure
        stats = {"L1": l1.item(), "1-SSIM": structure.item()}
        adversarial = self._adversarial()
        if adversarial:
            g_adv = F.softplus(-self.D(img)).mean()
            loss = loss + cfg.adv_weight * g_adv
            stats["G_adv"] = g_adv.item()
        self.G_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.G_opt.step()
        self.G.synthesis.requires_grad_(False)
        if adversarial:
            stats.update(self._d_step(img.detach(), target))
        self.state.nimg += cfg.batch
        self.state.step += 1
        self._update_ema()
        return stats

    def _d_step(self, fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        cfg = self.config
        self.D.requires_grad_(True)
        do_r1 = self.gamma > 0 and self.state.step % cfg.r1_interval == 0
        real = real.detach().requires_grad_(do_r1)
        real_logits = self.D(real)
        d_loss = F.softplus(self.D(fake)).mean() + F.softplus(-real_logits).mean()
        stats = {}
        if do_r1:
            grad, = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            r1 = grad.square().sum(dim=[1, 2, 3]).mean()
            d_loss = d_loss + r1 * (self.gamma / 2) * cfg.r1_interval
            stats["R1"] = r1.item()
        self.D_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.D_opt.step()
        self.D.requires_grad_(False)
        stats["D_loss"] = d_loss.item()
        return stats

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_nimg = min(self.config.ema_kimg * 1000, self.state.nimg * 0.05 + 1)
        beta = 0.5 ** (self.config.batch / ema_nimg)
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def run(self, stop: Callable[[], bool] | None = None) -> Generator:
        """Train to ``config.kimg``: log, and at every snapshot score, checkpoint and refresh data."""
        cfg = self.config
        total = int(cfg.kimg * 1000)
        next_snapshot = (self.state.nimg // int(cfg.snapshot_kimg * 1000) + 1) * int(cfg.snapshot_kimg * 1000)
        self.log(f"distilling into {self.G.img_resolution} px on {len(self.data)} teacher pairs from "
                 f"{self.state.nimg / 1000:.1f} to {cfg.kimg:g} kimg (batch {cfg.batch}"
                 + (f", adversarial ×{cfg.adv_weight:g} from {cfg.adv_start_kimg:g} kimg" if cfg.adv_weight else "")
                 + ")")
        tick_start, tick_img, sums = time.perf_counter(), self.state.nimg, {}
        while self.state.nimg < total:
            if stop is not None and stop():
                break
            start = time.perf_counter()
            for k, v in self.step().items():
                sums.setdefault(k, []).append(v)
            self.state.seconds += time.perf_counter() - start
            if self.state.step % cfg.log_every == 0:
                sec_per_kimg = (time.perf_counter() - tick_start) / max(self.state.nimg - tick_img, 1) * 1000
                self.log(f"kimg {self.state.nimg / 1000:7.2f}/{cfg.kimg:g}  {sec_per_kimg:6.1f} s/kimg  "
                         + "  ".join(f"{k} {sum(v) / len(v):.4f}" for k, v in sums.items()))
                tick_start, tick_img, sums = time.perf_counter(), self.state.nimg, {}
            if self.state.nimg >= next_snapshot:
                self.save()
                next_snapshot += int(cfg.snapshot_kimg * 1000)
                added = self.data.refresh()
                if added:
                    self.log(f"{added} new teacher pairs: {len(self.data)} in all")
        if not self.state.history or self.state.history[-1]["kimg"] != self.state.nimg / 1000:
            self.save()
        return self.G_ema

    # --- snapshots ---------------------------------------------------------------------------
    def save(self) -> None:
        """checkpoint.pt, generator.safetensors (G_ema), samples.png and a metrics line."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        entry = {"kimg": self.state.nimg / 1000, "seconds": round(self.state.seconds, 1),
                 "pairs": len(self.data)}
        if self.val is not None:
            entry.update({f"val_{k}": round(v, 4) for k, v in
                          score(self.G_ema, self.val, self.config.val_count).items()})
        self.state.history.append(entry)
        ckpt = {
            "format": CHECKPOINT_TAG, "version": CHECKPOINT_VERSION,
            "G_config": self.G.config.to_dict(), "distill_config": dataclasses.asdict(self.config),
            "G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(), "G_opt": self.G_opt.state_dict(),
            "nimg": self.state.nimg, "step": self.state.step, "seconds": self.state.seconds,
            "history": json.dumps(self.state.history), "rng": self.rng.get_state(),
        }
        if self.D is not None:
            ckpt.update({"D_config": dataclasses.asdict(self.D.config), "D": self.D.state_dict(),
                         "D_opt": self.D_opt.state_dict()})
        with atomic_write(self.out_dir / CHECKPOINT_NAME) as tmp:
            torch.save(ckpt, tmp)
        native.save(self.G_ema, self.out_dir / GENERATOR_NAME)
        with open(self.out_dir / METRICS_NAME, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self._save_samples()
        self.log("snapshot " + "  ".join(f"{k} {v}" for k, v in entry.items()))

    def _save_samples(self, count: int = 8) -> None:
        """samples.png: held-out teacher faces (top row) over the student's (bottom row)."""
        from ..render import make_grid, save_png, to_uint8
        source = self.val if self.val is not None else self.data
        w = source.w[:count].to(self.device)
        with torch.no_grad():
            student = self.G_ema.synthesis(self._ws(w), noise_mode="const")
        teacher = source.images[:count].float().div(127.5).sub(1)
        images = to_uint8(torch.cat([teacher, student.cpu()]))
        save_png(make_grid(images, columns=len(w)), self.out_dir / "samples.png",
                 scale=max(1, 128 // self.G.img_resolution))

    def load_state(self, ckpt: dict) -> None:
        """Continue from a checkpoint: optimiser moments and progress come from it, learning
        rates from this run's config (so a resumed command can change them)."""
        self.G_opt.load_state_dict(ckpt["G_opt"])
        for group in self.G_opt.param_groups:
            group["lr"] = self.config.lr
        if self.D is not None and "D_opt" in ckpt:
            self.D_opt.load_state_dict(ckpt["D_opt"])
            ratio = self.config.r1_interval / (self.config.r1_interval + 1)
            for group in self.D_opt.param_groups:
                group["lr"] = self.config.d_lr * ratio
        self.state = DistillState(nimg=int(ckpt["nimg"]), step=int(ckpt["step"]),
                                  seconds=float(ckpt["seconds"]), history=json.loads(ckpt["history"]))
        self.rng.set_state(ckpt["rng"])


def read_distill_checkpoint(out_dir: str | os.PathLike) -> dict | None:
    """The checkpoint in ``out_dir`` if it is a distillation checkpoint, else None
    (weights-only loading: nothing in it can run)."""
    path = Path(out_dir) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (corrupt or hostile: never fall back to unsafe loading)
        raise ModelLoadError(f"cannot read {path}: {str(exc).splitlines()[0][:120]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_TAG:
        return None
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ModelLoadError(f"distillation checkpoint version {ckpt.get('version')!r} is not {CHECKPOINT_VERSION}")
    return ckpt


def networks_from_distill_checkpoint(ckpt: dict):
    """(G, G_ema, D or None) rebuilt from a distillation checkpoint."""
    try:
        cfg = GeneratorConfig.from_dict(ckpt["G_config"])
        G, G_ema = Generator(cfg), Generator(cfg)
        G.load_state_dict(ckpt["G"])
        G_ema.load_state_dict(ckpt["G_ema"])
        D = None
        if "D" in ckpt:
            D = Discriminator(DiscriminatorConfig(**ckpt["D_config"]))
            D.load_state_dict(ckpt["D"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(f"distillation checkpoint does not match its own config "
                             f"({str(exc).splitlines()[0]})") from None
    return G, G_ema, D


def config_overrides(config: DistillConfig, **changes) -> DistillConfig:
    """``config`` with the options given on a resumed command line applied (None = keep)."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})


__all__ = ["DistillConfig", "Distiller", "TeacherPairs", "box_downsample", "make_student",
           "networks_from_distill_checkpoint", "parse_channels", "read_distill_checkpoint",
           "read_mapping", "score", "student_config", "config_overrides"]
