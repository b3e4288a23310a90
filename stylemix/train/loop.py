"""StyleGAN2 training: from scratch, or fine-tuning a pretrained pair (the paper's step 2).

The recipe follows StyleGAN2(-ADA) at small scale: non-saturating logistic loss, lazy R1
on reals, style mixing, an exponential moving average of G (the generator you ship), and
DiffAugment on everything D sees. Path-length regularisation is left out: it costs a
second generator pass per step, which matters on a CPU, and blends do not need it.

Checkpoints hold plain tensors and numbers only, so ``resume`` reads them with
``torch.load(weights_only=True)`` like any other untrusted file.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import ModelLoadError, StylemixError
from ..formats import native
from ..io import atomic_write
from ..networks import Generator, GeneratorConfig
from ..networks.discriminator import Discriminator, DiscriminatorConfig
from .augment import diff_augment, parse_policy
from .dataset import ImageFolder

CHECKPOINT_TAG = "stylemix-trainer"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
GENERATOR_NAME = "generator.safetensors"


@dataclass
class TrainConfig:
    """Optimisation settings; the defaults suit 64-256 px on a few thousand images or fewer."""
    batch: int = 16
    kimg: float = 100.0
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    r1_gamma: float | None = None       # None: StyleGAN2-ADA's heuristic 0.0002 * res² / batch
    r1_interval: int = 16
    style_mixing: float = 0.9
    ema_kimg: float | None = None       # None: batch * 10 / 32
    ema_rampup: float | None = 0.05
    augment: str = "color,translation,cutout"
    xflip: bool = True
    seed: int = 0
    snapshot_kimg: float = 10.0
    log_every: int = 20

    def gamma_for(self, resolution: int) -> float:
        return self.r1_gamma if self.r1_gamma is not None else 0.0002 * resolution ** 2 / self.batch


@dataclass
class TrainState:
    nimg: int = 0
    step: int = 0
    seconds: float = 0.0
    history: list = field(default_factory=list)


def small_generator_config(resolution: int, z_dim: int = 128, channel_base: int = 4096,
                           channel_max: int = 128, mapping_layers: int = 2) -> GeneratorConfig:
    """A generator small enough to train and render on a CPU."""
    return GeneratorConfig(z_dim=z_dim, c_dim=0, w_dim=z_dim, img_resolution=resolution,
                           mapping_layers=mapping_layers, channel_base=channel_base,
                           channel_max=channel_max)


def matching_discriminator_config(g: GeneratorConfig) -> DiscriminatorConfig:
    """A resnet D as wide as G at each resolution (from G's explicit channel table when it has
    one: as many feature maps as G at the top, doubling per halving, capped at G's widest)."""
    base, cap = g.channel_base, g.channel_max
    if g.channels:
        base, cap = g.channels[g.img_resolution] * g.img_resolution, max(g.channels.values())
    return DiscriminatorConfig(c_dim=0, img_resolution=g.img_resolution, img_channels=g.img_channels,
                               channel_base=base, channel_max=cap)


class Trainer:
    """Owns G, D, G_ema, their optimisers and progress; ``run`` trains until ``config.kimg``."""

    def __init__(self, G: Generator, D: Discriminator, data: ImageFolder, config: TrainConfig,
                 out_dir: str | Path, G_ema: Generator | None = None, device: str = "cpu",
                 log: Callable[[str], None] = print):
        if G.config.c_dim:
            raise StylemixError("training conditional generators is not supported")
        if data.resolution != G.img_resolution:
            raise StylemixError(f"data is {data.resolution} px but the generator makes "
                                f"{G.img_resolution} px")
        if config.batch % 4:
            raise StylemixError("batch must be a multiple of 4 (minibatch-stddev groups of 4)")
        self.config, self.data, self.device, self.log = config, data, device, log
        self.out_dir = Path(out_dir)
        self.policy = parse_policy(config.augment)
        self.G = G.to(device).train().requires_grad_(False)
        self.D = D.to(device).train().requires_grad_(False)
        self.G_ema = (G_ema if G_ema is not None else copy.deepcopy(G)).to(device).eval()
        self.G_ema.requires_grad_(False)
        self.G_ema.source, self.G_ema.blend_info = None, None
        ratio = config.r1_interval / (config.r1_interval + 1)  # lazy regularisation
        self.G_opt = torch.optim.Adam(self.G.parameters(), lr=config.g_lr, betas=(0.0, 0.99), eps=1e-8)
        self.D_opt = torch.optim.Adam(self.D.parameters(), lr=config.d_lr * ratio,
                                      betas=(0.0, 0.99 ** ratio), eps=1e-8)
        self.gamma = config.gamma_for(G.img_resolution)
        self.state = TrainState()
        self.rng = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed)

    # --- one step -------------------------------------------------------------------------
    def _latents(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.G.z_dim, generator=self.rng).to(self.device)
        ws = self.G.mapping(z)
        if self.config.style_mixing > 0 and ws.shape[1] > 1:
            z2 = torch.randn(n, self.G.z_dim, generator=self.rng).to(self.device)
            ws2 = self.G.mapping(z2)
            mix = torch.rand(n, generator=self.rng) < self.config.style_mixing
            cut = torch.randint(1, ws.shape[1], (n,), generator=self.rng)
            layer = torch.arange(ws.shape[1]).view(1, -1)
            take2 = (mix.view(-1, 1) & (layer >= cut.view(-1, 1))).to(self.device)
            ws = torch.where(take2.unsqueeze(-1), ws2, ws)
        return ws

    def _fake(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        ws = self._latents(n)
        return self.G.synthesis(ws, noise_mode="random"), ws

    def _d(self, img: torch.Tensor) -> torch.Tensor:
        return self.D(diff_augment(img, self.policy) if self.policy else img)

    def step(self) -> dict[str, float]:
        """One adversarial step: G, then D (with R1 every r1_interval steps)."""
        cfg, n = self.config, self.config.batch
        stats = {}
        # Generator: make D call fakes real.
        self.G.requires_grad_(True)
        fake, ws = self._fake(n)
        g_loss = F.softplus(-self._d(fake)).mean()
        self.G_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.G_opt.step()
        self.G.requires_grad_(False)
        with torch.no_grad():  # track the mean w for truncation, as NVIDIA's mapping does
            self.G.mapping.w_avg.lerp_(ws[:, 0].mean(0), 1 - 0.995)
        stats["G_loss"] = g_loss.item()

        # Discriminator: fakes low, reals high; R1 on reals every r1_interval steps.
        self.D.requires_grad_(True)
        with torch.no_grad():
            fake, _ = self._fake(n)
        real = self.data.batch(n, self.rng, self.config.xflip).to(self.device)
        do_r1 = self.gamma > 0 and self.state.step % cfg.r1_interval == 0
        real.requires_grad_(do_r1)
        real_logits = self._d(real)
        d_loss = F.softplus(self._d(fake)).mean() + F.softplus(-real_logits).mean()
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

        self.state.nimg += n
        self.state.step += 1
        self._update_ema()
        return stats

    @torch.no_grad()
    def _update_ema(self) -> None:
        cfg = self.config
        ema_nimg = (cfg.ema_kimg if cfg.ema_kimg is not None else cfg.batch * 10 / 32) * 1000
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.state.nimg * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # --- the loop ---------------------------------------------------------------------------
    def run(self, stop: Callable[[], bool] | None = None) -> Generator:
        """Train to ``config.kimg``, logging, snapshotting and checkpointing on the way."""
        cfg = self.config
        total = int(cfg.kimg * 1000)
        next_snapshot = self.state.nimg + int(cfg.snapshot_kimg * 1000)
        self.log(f"training {self.G.img_resolution} px on {len(self.data)} images from "
                 f"{self.state.nimg / 1000:.1f} to {cfg.kimg:g} kimg (batch {cfg.batch}, "
                 f"R1 gamma {self.gamma:g}, augment '{cfg.augment or 'none'}')")
        tick_start, tick_img, sums = time.perf_counter(), self.state.nimg, {}
        while self.state.nimg < total:
            if stop is not None and stop():
                break
            start = time.perf_counter()
            for k, v in self.step().items():
                sums.setdefault(k, []).append(v)
            self.state.seconds += time.perf_counter() - start
            if self.state.step % cfg.log_every == 0 or self.state.nimg >= total:
                elapsed = time.perf_counter() - tick_start
                sec_per_kimg = elapsed / max(self.state.nimg - tick_img, 1) * 1000
                means = {k: sum(v) / len(v) for k, v in sums.items()}
                self.state.history.append({"kimg": self.state.nimg / 1000, **means})
                self.log(f"kimg {self.state.nimg / 1000:7.2f}/{cfg.kimg:g}  "
                         f"{sec_per_kimg:6.1f} s/kimg  " +
                         "  ".join(f"{k} {v:.3f}" for k, v in means.items()))
                tick_start, tick_img, sums = time.perf_counter(), self.state.nimg, {}
            if self.state.nimg >= next_snapshot:
                self.save()
                next_snapshot += int(cfg.snapshot_kimg * 1000)
        self.save()
        return self.G_ema

    # --- checkpoints -------------------------------------------------------------------------
    def save(self) -> None:
        """Write checkpoint.pt (everything to resume) and generator.safetensors (G_ema)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = {
            "format": CHECKPOINT_TAG, "version": CHECKPOINT_VERSION,
            "G_config": self.G.config.to_dict(),
            "D_config": dataclasses.asdict(self.D.config),
            "train_config": dataclasses.asdict(self.config),
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "G_opt": self.G_opt.state_dict(), "D_opt": self.D_opt.state_dict(),
            "nimg": self.state.nimg, "step": self.state.step, "seconds": self.state.seconds,
            "history": self.state.history, "rng": self.rng.get_state(),
        }
        with atomic_write(self.out_dir / CHECKPOINT_NAME) as tmp:
            torch.save(ckpt, tmp)
        self.G_ema.blend_info = None
        native.save(self.G_ema, self.out_dir / GENERATOR_NAME)
        self._save_samples()
        self.log(f"saved {self.out_dir / CHECKPOINT_NAME} at {self.state.nimg / 1000:.1f} kimg")

    def _save_samples(self, seeds: range = range(32)) -> None:
        """samples.png: G_ema on fixed seeds (ψ=1), so progress can be watched by eye."""
        from ..render import make_grid, render_seeds, save_png, to_uint8
        images = to_uint8(render_seeds(self.G_ema, list(seeds), psi=1.0))
        save_png(make_grid(images, columns=8), self.out_dir / "samples.png",
                 scale=max(1, 128 // self.G_ema.img_resolution))

    def load_state(self, ckpt: dict) -> None:
        """Restore optimisers and progress from a checkpoint of the same networks."""
        self.G_opt.load_state_dict(ckpt["G_opt"])
        self.D_opt.load_state_dict(ckpt["D_opt"])
        self.state = TrainState(nimg=int(ckpt["nimg"]), step=int(ckpt["step"]),
                                seconds=float(ckpt.get("seconds", 0.0)),
                                history=list(ckpt.get("history", [])))
        if isinstance(ckpt.get("rng"), torch.Tensor):
            self.rng.set_state(ckpt["rng"])


def read_trainer_checkpoint(path: str | os.PathLike) -> dict | None:
    """The checkpoint dict if ``path`` (or ``path``/checkpoint.pt) is a stylemix trainer
    checkpoint, else None. Read with weights_only=True: it may come from anywhere."""
    from ..formats import TORCH_SAVE, detect_format
    from ..io import read_torch_file
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    try:
        if not path.is_file() or detect_format(path) != TORCH_SAVE:
            return None
        ckpt = read_torch_file(path)
    except ModelLoadError:
        return None
    return ckpt if ckpt.get("format") == CHECKPOINT_TAG else None


def networks_from_checkpoint(ckpt: dict, device: str = "cpu"):
    """(G, D, G_ema) rebuilt from a trainer checkpoint, each checked against its config."""
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ModelLoadError(f"trainer checkpoint version {ckpt.get('version')!r} is not "
                             f"{CHECKPOINT_VERSION}")
    try:
        g_cfg = GeneratorConfig.from_dict(ckpt["G_config"])
        d_cfg = DiscriminatorConfig(**ckpt["D_config"])
        G, D, G_ema = Generator(g_cfg), Discriminator(d_cfg), Generator(g_cfg)
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        G_ema.load_state_dict(ckpt["G_ema"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(f"trainer checkpoint does not match its own config "
                             f"({str(exc).splitlines()[0]})") from None
    return G.to(device), D.to(device), G_ema.to(device)
