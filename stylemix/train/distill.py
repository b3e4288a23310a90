"""Distillation: train a StyleGAN2 synthesis network to redraw a teacher's face for each w.

A teacher generator (e.g. FFHQ StyleGAN2, or a network distilled from it) gives pairs
(w, image). A student that copies the teacher's mapping network and learns ``synthesis(w) ≈
teacher(w)`` lives in the teacher's latent space: the same z gives the same w and the same
person, so projection, truncation and seeds mean what they mean for the teacher. The losses are
per-pixel L1 plus structural similarity over pooled scales (no downloaded perceptual weights), and
optionally the trainer's adversarial loss (non-saturating, lazy R1) for sharpness, with the
teacher's images as the reals — the recipe of MobileStyleGAN (Belousov 2021) minus its
perceptual term.

Pairs are :class:`~.dataset.TeacherPairs`; a held-out folder of the same kind scores every
snapshot (PSNR and SSIM at the model's resolution). The objective runs in the shared
:class:`~.loop.TrainingLoop`: running the same command again resumes, and picks up chunks the
data builder has added since.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ModelLoadError, StylemixError
from ..formats import native
from ..networks import Generator, GeneratorConfig
from ..networks.discriminator import Discriminator, DiscriminatorConfig
from ..project import pooled_ssim_loss, psnr, ssim
from .adversarial import discriminator_loss, ema_beta, generator_loss, lazy_adam, r1_gamma, update_ema
from .dataset import DatasetError, TeacherPairs, box_downsample  # noqa: F401  (box_downsample: public here too)
from .gan import GENERATOR_NAME, matching_discriminator_config
from .loop import METRICS_NAME, LoopConfig, Objective, Phase, RunState, read_checkpoint  # noqa: F401
from ..io import first_line

CHECKPOINT_TAG = "stylemix-distill"


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


def grow_student(G_small: Generator, resolution: int, new_channels: dict[int, int],
                 seed: int = 0) -> Generator:
    """A student at ``resolution`` px that starts as ``G_small`` drawn bigger: every tensor of
    ``G_small`` (mapping, w_avg, its synthesis blocks) copied, the blocks above its resolution
    new, with their toRGB layers zero so the skip architecture's output is at first exactly
    ``G_small``'s image upsampled by the blocks' FIR filter. So a sharper base continues the
    one that ships (the same latent space, the same faces) instead of starting over; the idea
    is progressive growing's (Karras et al. 2018) with the skip generator of StyleGAN2.

    ``new_channels`` ({res: feature maps}) must name every resolution above ``G_small``'s and
    no other. Raises StylemixError when ``G_small`` is not a skip generator or the
    resolutions do not fit."""
    small = G_small.config
    if getattr(small, "architecture", None) != "skip" or small.c_dim:
        raise StylemixError("only an unconditional skip-architecture generator (StyleGAN2 config-f "
                            "style) can be grown: its output is the sum of every block's RGB")
    above = [2 ** k for k in range(small.img_resolution.bit_length(), resolution.bit_length())]
    if resolution & (resolution - 1):
        raise StylemixError(f"--resolution {resolution} is not a power of two")
    if resolution <= small.img_resolution:
        raise StylemixError(f"--resolution {resolution} is not above the {small.img_resolution} px "
                            f"model it grows from (e.g. {2 * small.img_resolution})")
    if sorted(new_channels) != above:
        raise StylemixError(f"--channels must give the new blocks' feature maps, {', '.join(f'{r}:COUNT' for r in above)}, "
                            f"not {','.join(f'{r}:{c}' for r, c in sorted(new_channels.items()))}")
    torch.manual_seed(seed)
    G = Generator(dataclasses.replace(small, img_resolution=resolution,
                                      channels={**{r: small.channels_at(r) for r in G_small.block_resolutions},
                                                **new_channels}))
    state = G.state_dict()
    for name, value in G_small.state_dict().items():
        state[name].copy_(value)
    with torch.no_grad():
        for r in above:
            torgb = getattr(G.synthesis, f"b{r}").torgb
            torgb.weight.zero_()
            torgb.bias.zero_()
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
class DistillConfig(LoopConfig):
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
    snapshot_kimg: float = 5.0
    log_every: int = 25
    val_count: int = 64             # held-out pairs scored at each snapshot

    def gamma_for(self, resolution: int) -> float:
        return r1_gamma(resolution, self.batch, self.r1_gamma)


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


class DistillObjective(Objective):
    """Student G (synthesis trained, mapping frozen) against the teacher's image for each w;
    phases G (L1 + SSIM over pooled scales, + adversarial once on) and D (only while adversarial)."""

    tag, config_key = CHECKPOINT_TAG, "distill_config"

    def __init__(self, G: Generator, data: TeacherPairs, config: DistillConfig,
                 val: TeacherPairs | None = None, G_ema: Generator | None = None,
                 D: Discriminator | None = None, device: str = "cpu"):
        if data.resolution != G.img_resolution:
            raise StylemixError(f"pairs are {data.resolution} px but the student makes {G.img_resolution} px")
        if data.w.shape[1] != G.w_dim:
            raise StylemixError(f"pairs hold w of {data.w.shape[1]} values, the student's w has {G.w_dim}")
        if data.images.shape[1] != G.img_channels:
            raise StylemixError(f"pairs have {data.images.shape[1]} colour channels, the student "
                                f"{G.img_channels}")
        if config.adv_weight > 0 and (config.batch % 4 or (config.batch_gpu or 4) % 4):
            raise StylemixError("with the adversarial term, batch must be a multiple of 4")
        self.config, self.data, self.val, self.device = config, data, val, device
        self.G = G.to(device).train().requires_grad_(False)
        self.G_ema = (G_ema if G_ema is not None else copy.deepcopy(G)).to(device).eval()
        self.G_ema.requires_grad_(False)
        self.G_ema.forget_file_metadata()
        self.G_opt = torch.optim.Adam(self.G.synthesis.parameters(), lr=config.lr, betas=(0.9, 0.99), eps=1e-8)
        self.D = D
        if config.adv_weight > 0 and self.D is None:
            self.D = Discriminator(matching_discriminator_config(G.config))
        self.D_opt = None
        if self.D is not None:
            self.D = self.D.to(device).train().requires_grad_(False)
            self.D_opt = lazy_adam(self.D.parameters(), config.d_lr, config.r1_interval)
        self.gamma = config.gamma_for(G.img_resolution)
        self._drawn: list[tuple[torch.Tensor, torch.Tensor]] = []   # (fake, real) per chunk, for D

    def networks(self):
        return {"G": self.G, "G_ema": self.G_ema, **({"D": self.D} if self.D is not None else {})}

    def optimizers(self):
        return {"G": self.G_opt, **({"D": self.D_opt} if self.D is not None else {})}

    def _adversarial(self, state: RunState) -> bool:
        cfg = self.config
        return self.D is not None and cfg.adv_weight > 0 and state.nimg >= cfg.adv_start_kimg * 1000

    def phases(self, state):
        G = [Phase("G", self.G.synthesis, self.G_opt)]
        return G + [Phase("D", self.D, self.D_opt)] if self._adversarial(state) else G

    def describe(self) -> str:
        cfg = self.config
        return (f"distilling into {self.G.img_resolution} px on {len(self.data)} teacher pairs"
                + (f", adversarial ×{cfg.adv_weight:g} from {cfg.adv_start_kimg:g} kimg" if cfg.adv_weight else ""))

    def _ws(self, w: torch.Tensor) -> torch.Tensor:
        return w.to(self.device)[:, None].repeat(1, self.G.num_ws, 1)

    def accumulate_gradients(self, phase: str, state: RunState, rng: torch.Generator,
                             size: int) -> dict[str, float]:
        cfg = self.config
        if phase == "D":  # on the fakes the G phase of this step drew, chunk by chunk
            fake, real = self._drawn.pop(0)
            with_r1 = self.gamma > 0 and state.step % cfg.r1_interval == 0
            loss, stats = discriminator_loss(self.D, fake, real, self.gamma, cfg.r1_interval, with_r1)
            loss.backward()
            return stats
        w, target = self.data.batch(size, rng)
        target = target.to(self.device)
        img = self.G.synthesis(self._ws(w), noise_mode="const")
        l1 = (img - target).abs().mean()
        structure = pooled_ssim_loss(img, target)
        loss = cfg.l1_weight * l1 + cfg.ssim_weight * structure
        stats = {"L1": l1.item(), "1-SSIM": structure.item()}
        if self._adversarial(state):
            g_adv = generator_loss(self.D(img))
            loss = loss + cfg.adv_weight * g_adv
            stats["G_adv"] = g_adv.item()
            self._drawn.append((img.detach(), target))
        loss.backward()
        return stats

    def end_step(self, state: RunState) -> None:
        cfg = self.config
        update_ema(self.G_ema, self.G, ema_beta(cfg.batch, state.nimg, cfg.ema_kimg))

    # --- snapshots ---------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        if self.val is None:
            return {"pairs": len(self.data)}
        held_out = score(self.G_ema, self.val, self.config.val_count)
        return {"pairs": len(self.data), **{f"val_{k}": v for k, v in held_out.items()}}

    def checkpoint_extras(self) -> dict:
        extras = {"G_config": self.G.config.to_dict()}
        if self.D is not None:
            extras["D_config"] = dataclasses.asdict(self.D.config)
        return extras

    def write_artifacts(self, out_dir: Path, state: RunState) -> None:
        """generator.safetensors (G_ema) and samples.png: held-out teacher faces (top row) over
        the student's drawings of the same w (bottom row)."""
        from ..render import make_grid, save_png, to_uint8
        native.save(self.G_ema, out_dir / GENERATOR_NAME)
        source = self.val if self.val is not None else self.data
        w = source.w[:8].to(self.device)
        with torch.no_grad():
            student = self.G_ema.synthesis(self._ws(w), noise_mode="const")
        teacher = source.images[:8].float().div(127.5).sub(1)
        images = to_uint8(torch.cat([teacher, student.cpu()]))
        save_png(make_grid(images, columns=len(w)), out_dir / "samples.png",
                 scale=max(1, 128 // self.G.img_resolution))

    def after_snapshot(self) -> str | None:
        added = self.data.refresh()
        return f"{added} new teacher pairs: {len(self.data)} in all" if added else None


def read_distill_checkpoint(out_dir: str | os.PathLike) -> dict | None:
    """The checkpoint in ``out_dir`` if it is a distillation checkpoint, else None
    (weights-only loading: nothing in it can run)."""
    return read_checkpoint(out_dir, CHECKPOINT_TAG)


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
                             f"({first_line(exc)})") from None
    return G, G_ema, D


def config_overrides(config: DistillConfig, **changes) -> DistillConfig:
    """``config`` with the options given on a resumed command line applied (None = keep)."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})


__all__ = ["DistillConfig", "DistillObjective", "TeacherPairs", "box_downsample", "make_student",
           "networks_from_distill_checkpoint", "parse_channels", "read_distill_checkpoint",
           "read_mapping", "score", "student_config", "config_overrides"]
