"""The adversarial objective: StyleGAN2 trained from scratch, or fine-tuned on a new domain
(the paper's step 2, "transfer learning"), in the shared :class:`~.loop.TrainingLoop`.

Non-saturating logistic loss, lazy R1 on reals, style mixing, the EMA of G (the generator you
ship) and DiffAugment on everything D sees. Path-length regularisation is left out: it costs a
second generator pass per step, which matters on a CPU, and blends do not need it.

For fine-tuning, freezes move *where* the new domain is learnt (all off by
default), so a layer swap can take the new domain's structure from the low blocks and its
rendering from the high ones (the layer swap's two sides):

- ``freeze_g_above`` keeps the synthesis blocks above a resolution (and their toRGB) fixed, so
  the change of shape can only be made by the low blocks; ``freeze_g_upto`` keeps the blocks at
  and below a resolution fixed, so what is still learnt (colour, rendering) goes high.
- ``freeze_noise`` keeps every layer's noise strength: a base that was distilled (trained
  without noise) has ~0 at the top, and a young D pushes it up into grain within a kimg.
- ``freeze_d`` keeps D's first (highest-resolution) blocks fixed (FreezeD, Mo et al. 2020).
- ``freeze_mapping`` keeps the base's mapping network, so a blend's latents (which use base's
  mapping) mean to the transfer what they meant while it trained.
- ``keep_colour`` / ``keep_layout`` pull each sample's colour / layout back to the model
  the fine-tune started from (:mod:`.keep`): what a phase may not learn, beside where.
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
from .adversarial import discriminator_loss, ema_beta, generator_loss, lazy_adam, r1_gamma, update_ema
from .augment import diff_augment, parse_policy
from .dataset import ImageFolder
from .keep import keep_loss
from .loop import LoopConfig, Objective, Phase, RunState, read_checkpoint
from ..io import first_line

CHECKPOINT_TAG = "stylemix-trainer"
GENERATOR_NAME = "generator.safetensors"


@dataclass
class TrainConfig(LoopConfig):
    """Adversarial settings; the defaults suit 64-256 px on a few thousand images or fewer."""
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
    freeze_g_above: int | None = None   # synthesis blocks above this resolution stay fixed
    freeze_g_upto: int | None = None    # synthesis blocks at and below this resolution stay fixed
    freeze_mapping: bool = False        # the mapping network stays fixed (the base's latent space)
    freeze_noise: bool = False          # every layer's noise strength stays fixed
    freeze_d: int = 0                   # D's first (highest-resolution) blocks that stay fixed
    keep_colour: float = 0.0            # weight: each sample's colour (mean, 8×8 chroma) stays the start model's
    keep_layout: float = 0.0            # weight: each sample's 16×16 layout stays the start model's
    snapshot_kimg: float = 10.0
    log_every: int = 20

    def gamma_for(self, resolution: int) -> float:
        return r1_gamma(resolution, self.batch, self.r1_gamma)


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


def block_frozen(resolution: int, above: int | None, upto: int | None) -> bool:
    """Whether the synthesis block at ``resolution`` stays fixed: above ``above`` or at and
    below ``upto`` (None: no bound on that side)."""
    return (above is not None and resolution > above) or (upto is not None and resolution <= upto)


def check_block_options(G: Generator, above: int | None, upto: int | None, **more: int | None) -> None:
    """Raise StylemixError unless ``above``/``upto`` (and any ``more`` option: its value) name
    resolutions of G's blocks and leave at least one block to train."""
    options = {"--freeze-g-above": above, "--freeze-g-upto": upto, **more}
    for option, res in options.items():
        if res is not None and res not in G.synthesis.block_resolutions:
            raise StylemixError(f"{option} {res} is not one of the generator's "
                                f"resolutions {list(G.synthesis.block_resolutions)}")
    if all(block_frozen(r, above, upto) for r in G.synthesis.block_resolutions):
        raise StylemixError(f"--freeze-g-above {above} with --freeze-g-upto {upto} leaves no "
                            "synthesis block to train")


def frozen_blocks_phrase(above: int | None, upto: int | None) -> str:
    """", G frozen above 32 px, G frozen up to 16 px" (what a run's opening line says)."""
    return "".join([f", G frozen above {above} px" if above else "",
                    f", G frozen up to {upto} px" if upto else ""])


def write_generator(G: Generator, out_dir: Path) -> None:
    """A snapshot's generator.safetensors and samples.png (G on seeds 0-31, ψ=1)."""
    from ..render import make_grid, render_seeds, save_png, to_uint8
    G.forget_file_metadata(keep_source=True)  # a new model: its start file's toonify blend need not fit it
    native.save(G, out_dir / GENERATOR_NAME)
    images = to_uint8(render_seeds(G, list(range(32)), psi=1.0))
    save_png(make_grid(images, columns=8), out_dir / "samples.png", scale=max(1, 128 // G.img_resolution))


def frozen_generator_parameters(G: Generator, above: int | None, mapping: bool = False,
                                upto: int | None = None, noise: bool = False) -> tuple[torch.nn.Parameter, ...]:
    """Synthesis parameters of the blocks ``b{r}`` with r > ``above`` or r ≤ ``upto`` (None:
    no bound), every ``noise_strength`` when ``noise``, and the mapping network's when ``mapping``."""
    frozen = tuple(G.mapping.parameters()) if mapping else ()

    def fixed(name: str) -> bool:
        return block_frozen(int(name[1:].split(".")[0]), above, upto) or (noise and name.endswith("noise_strength"))
    return frozen + tuple(p for name, p in G.synthesis.named_parameters()
                          if name.startswith("b") and fixed(name))


def frozen_discriminator_parameters(D: Discriminator, count: int) -> tuple[torch.nn.Parameter, ...]:
    """Parameters of D's ``count`` highest-resolution blocks (FreezeD)."""
    if count <= 0:
        return ()
    blocks = sorted({int(name.split(".")[0][1:]) for name, _ in D.named_parameters()
                     if name.startswith("b") and name.split(".")[0][1:].isdigit()}, reverse=True)
    keep = {f"b{r}." for r in blocks[:count]}
    return tuple(p for name, p in D.named_parameters() if any(name.startswith(k) for k in keep))


class GanObjective(Objective):
    """G against D on an image folder; the phases are G (make D call fakes real) and D (fakes
    low, reals high, R1 on reals every ``r1_interval`` steps)."""

    tag, config_key = CHECKPOINT_TAG, "train_config"

    def __init__(self, G: Generator, D: Discriminator, data: ImageFolder, config: TrainConfig,
                 G_ema: Generator | None = None, device: str = "cpu", reference: Generator | None = None):
        """``reference``: the model the keep terms pull towards (default: a copy of G_ema as
        it starts here; a resumed run passes the one its checkpoint holds)."""
        if G.config.c_dim:
            raise StylemixError("training conditional generators is not supported")
        if data.resolution != G.img_resolution:
            raise StylemixError(f"data is {data.resolution} px but the generator makes "
                                f"{G.img_resolution} px")
        if config.batch % 4 or (config.batch_gpu or 4) % 4:
            raise StylemixError("batch (and batch per device) must be a multiple of 4 (minibatch-stddev groups of 4)")
        check_block_options(G, config.freeze_g_above, config.freeze_g_upto)
        for option, weight in (("--keep-colour", config.keep_colour), ("--keep-layout", config.keep_layout)):
            if not weight >= 0:
                raise StylemixError(f"{option} {weight:g} is not a weight: give 0 (off) or more")
        self.config, self.data, self.device = config, data, device
        self.policy = parse_policy(config.augment)
        self.G = G.to(device).train().requires_grad_(False)
        self.D = D.to(device).train().requires_grad_(False)
        self.G_ema = (G_ema if G_ema is not None else copy.deepcopy(G)).to(device).eval()
        self.G_ema.requires_grad_(False)
        self.G_ema.forget_file_metadata()
        self.reference = None
        if config.keep_colour or config.keep_layout:
            self.reference = (reference if reference is not None else copy.deepcopy(self.G_ema)).to(device)
            self.reference.eval().requires_grad_(False)
        self.G_opt = torch.optim.Adam(self.G.parameters(), lr=config.g_lr, betas=(0.0, 0.99), eps=1e-8)
        self.D_opt = lazy_adam(self.D.parameters(), config.d_lr, config.r1_interval)
        self.gamma = config.gamma_for(G.img_resolution)
        self._phases = [Phase("G", self.G, self.G_opt, frozen_generator_parameters(
                            self.G, config.freeze_g_above, config.freeze_mapping, config.freeze_g_upto,
                            config.freeze_noise)),
                        Phase("D", self.D, self.D_opt, frozen_discriminator_parameters(self.D, config.freeze_d))]
        self._w_means: list[torch.Tensor] = []   # this step's chunks' mean w
        torch.manual_seed(config.seed)

    def networks(self):
        nets = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
        if self.reference is not None:
            nets["G_reference"] = self.reference
        return nets

    def optimizers(self):
        return {"G": self.G_opt, "D": self.D_opt}

    def phases(self, state):
        return self._phases

    def describe(self) -> str:
        cfg = self.config
        frozen = "".join([frozen_blocks_phrase(cfg.freeze_g_above, cfg.freeze_g_upto),
                          ", mapping frozen" if cfg.freeze_mapping else "",
                          ", noise strengths frozen" if cfg.freeze_noise else "",
                          f", D's first {cfg.freeze_d} blocks frozen" if cfg.freeze_d else "",
                          f", keep colour {cfg.keep_colour:g}" if cfg.keep_colour else "",
                          f", keep layout {cfg.keep_layout:g}" if cfg.keep_layout else ""])
        return (f"training {self.G.img_resolution} px on {len(self.data)} images (R1 gamma "
                f"{self.gamma:g}, augment '{cfg.augment or 'none'}'{frozen})")

    # --- losses ---------------------------------------------------------------------------
    def _latents(self, n: int, rng: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.G.z_dim, generator=rng).to(self.device)
        ws = self.G.mapping(z)
        if self.config.style_mixing > 0 and ws.shape[1] > 1:
            z2 = torch.randn(n, self.G.z_dim, generator=rng).to(self.device)
            ws2 = self.G.mapping(z2)
            mix = torch.rand(n, generator=rng) < self.config.style_mixing
            cut = torch.randint(1, ws.shape[1], (n,), generator=rng)
            layer = torch.arange(ws.shape[1]).view(1, -1)
            take2 = (mix.view(-1, 1) & (layer >= cut.view(-1, 1))).to(self.device)
            ws = torch.where(take2.unsqueeze(-1), ws2, ws)
        return ws

    def _d(self, img: torch.Tensor) -> torch.Tensor:
        return self.D(diff_augment(img, self.policy) if self.policy else img)

    def accumulate_gradients(self, phase: str, state: RunState, rng: torch.Generator,
                             size: int) -> dict[str, float]:
        n = size
        if phase == "G":
            ws = self._latents(n, rng)
            fake = self.G.synthesis(ws, noise_mode="random")
            loss = generator_loss(self._d(fake))
            stats = {"G_loss": loss.item()}
            if self.reference is not None:
                with torch.no_grad():
                    ref = self.reference.synthesis(ws.detach(), noise_mode="const")
                keep, keep_stats = keep_loss(fake, ref, self.config.keep_colour, self.config.keep_layout)
                loss, stats = loss + keep, {**stats, **keep_stats}
            loss.backward()
            self._w_means.append(ws[:, 0].detach().mean(0))
            return stats
        with torch.no_grad():
            fake = self.G.synthesis(self._latents(n, rng), noise_mode="random")
        real = self.data.batch(n, rng, self.config.xflip).to(self.device)
        with_r1 = self.gamma > 0 and state.step % self.config.r1_interval == 0
        loss, stats = discriminator_loss(self._d, fake, real, self.gamma, self.config.r1_interval, with_r1)
        loss.backward()
        return stats

    def end_step(self, state: RunState) -> None:
        cfg = self.config
        if self._w_means:  # track the mean w for truncation, as NVIDIA's mapping does: once a step
            w_mean = self.ranks.mean(torch.stack(self._w_means).mean(0))
            self.G.mapping.w_avg.lerp_(w_mean, 1 - 0.995)
            self._w_means = []
        half_life = cfg.ema_kimg if cfg.ema_kimg is not None else cfg.batch * 10 / 32
        update_ema(self.G_ema, self.G, ema_beta(cfg.batch, state.nimg, half_life, cfg.ema_rampup))

    # --- snapshots ------------------------------------------------------------------------
    def checkpoint_extras(self) -> dict:
        return {"G_config": self.G.config.to_dict(), "D_config": dataclasses.asdict(self.D.config)}

    def write_artifacts(self, out_dir: Path, state: RunState) -> None:
        """generator.safetensors (G_ema) and samples.png (G_ema on seeds 0-31, ψ=1)."""
        write_generator(self.G_ema, out_dir)


def read_trainer_checkpoint(path: str | os.PathLike) -> dict | None:
    """The checkpoint dict if ``path`` (or ``path``/checkpoint.pt) is a stylemix trainer
    checkpoint, else None. Read with weights-only loading: it may come from anywhere."""
    return read_checkpoint(path, CHECKPOINT_TAG)


def networks_from_checkpoint(ckpt: dict, device: str = "cpu"):
    """(G, D, G_ema) rebuilt from a trainer checkpoint, each checked against its config."""
    try:
        g_cfg = GeneratorConfig.from_dict(ckpt["G_config"])
        d_cfg = DiscriminatorConfig(**ckpt["D_config"])
        G, D, G_ema = Generator(g_cfg), Discriminator(d_cfg), Generator(g_cfg)
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        G_ema.load_state_dict(ckpt["G_ema"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(f"trainer checkpoint does not match its own config "
                             f"({first_line(exc)})") from None
    return G.to(device), D.to(device), G_ema.to(device)


def generator_from_checkpoint(ckpt: dict, name: str, device: str = "cpu") -> Generator | None:
    """The generator ``name`` (``G``, ``G_reference``…) a checkpoint holds, built from its
    ``G_config``; None if it has none. A state that does not fit the config is a ModelLoadError."""
    if name not in ckpt:
        return None
    G = Generator(GeneratorConfig.from_dict(ckpt["G_config"]))
    try:
        G.load_state_dict(ckpt[name])
    except RuntimeError as exc:
        raise ModelLoadError(f"{ckpt.get('format', 'the')} checkpoint's {name} does not match its config "
                             f"({first_line(exc)})") from None
    return G.to(device)


def reference_from_checkpoint(ckpt: dict, device: str = "cpu") -> Generator | None:
    """The keep terms' reference generator a trainer checkpoint holds (None if it has none)."""
    return generator_from_checkpoint(ckpt, "G_reference", device)
