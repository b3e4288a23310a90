"""The paired objective: fine-tune a transfer from stylised images *and their latents*.

An adversarial fine-tune on a few hundred images, on a CPU, learns a domain slowly: after 10
kimg the default pair's transfer still drew photo faces with painted-on eyes. Here each
stylised image is first inverted into the base's W+ with the base's encoder, and G learns to
draw the image at its latent: a plain regression (L1 + pooled SSIM + L1 at quarter
resolution), so every step says exactly what the cartoon of that face looks like. This is the
idea of JoJoGAN (Chong & Forsyth, "JoJoGAN: One Shot Face Stylization", ECCV 2022), written
here for many references and without a perceptual network (none ships).

Three settings make the result a blend pair rather than a lookup table:

- ``mixing``: for that share of samples the latents of the blocks from ``mix_from`` px up are
  replaced by a random face's, and the target stays the same; G learns to draw the cartoon
  whatever those layers say, so any face (a toonified photo's latent) gets the style.
- ``freeze_g_above`` / ``freeze_g_upto`` (as in :mod:`.gan`): a first run with the high blocks
  fixed makes the low blocks learn the cartoon's structure (head shape, eye size and place),
  the layer swap's structure side; a second run from it with the low blocks fixed learns the
  rendering above them.
- ``grey_pairs`` with ``keep_colour`` (the structure phase): the paired terms compare each
  image's grey, standardised (light and dark, not brightness or colour), and the keep term
  holds the colour to the start model's at the same latent. Without it, mixing teaches the low
  blocks to paint the cartoon's colours whatever the high layers say, and a swap's colour no
  longer comes from the base. The colour kept is the whole image's, so learn one side of each
  swap you care about per run (≤ 16 px, then 32 px alone): trained together, the 32 px block
  corrects what the lower ones tinted, and the swap at 16 px drops the correction — or keep
  the colour of that swap too (``keep_colour_swaps``: the image of G's blocks up to r px with
  the start model's above, held to the start model's colour), so blocks learnt together leave
  each swap's colour to the base.
- ``learn_region`` (:mod:`.region`): the target is the stylised image inside a mask and the
  start model's own drawing outside it, so one block learns one feature (the eyes at 32 px)
  and leaves the rest of its scale (a smile) as the start model draws it.

The mapping network is never trained (the blend's latents come from the base's mapping).
Pairs are computed once, when a run starts from a model file, and kept in the checkpoint: a
run started from a paired run's folder reuses them, as its generator is no longer the base
the encoder was made for.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import StylemixError
from ..networks import Generator
from ..project import pooled_ssim_loss
from .dataset import ImageFolder
from .keep import CHROMA_SIZE, keep_loss
from .region import region_mask
from .gan import check_block_options, frozen_blocks_phrase, frozen_generator_parameters, write_generator
from .loop import LoopConfig, Objective, Phase, RunState, read_checkpoint

CHECKPOINT_TAG = "stylemix-paired-trainer"
DEFAULT_MIX_FROM = 64   # px: at 128 px the top two blocks (the default pair's setting)


@dataclass
class PairedConfig(LoopConfig):
    """Paired settings (kimg: thousands of images shown; images and latents as the loop's);
    the defaults are the default pair's phases at 128 px on a CPU."""
    batch: int = 8
    kimg: float = 3.2
    lr: float = 0.002
    mixing: float = 0.5                 # share of samples whose latents from mix_from px up are a random face's
    mix_from: int | None = None         # the lowest resolution whose latents get mixed (None: 64 px, or the top block below that)
    ssim_weight: float = 1.0            # weight of 1 − SSIM over pooled scales (L1 has 1)
    coarse_weight: float = 2.0          # weight of the L1 at quarter resolution (shape over detail)
    xflip: bool = True                  # also learn each image mirrored (at its mirror's latent)
    freeze_g_above: int | None = None
    freeze_g_upto: int | None = None
    freeze_noise: bool = True
    grey_pairs: bool = False            # compare standardised grey only: structure, not colour
    keep_colour: float = 0.0            # weight: each sample's colour stays the start model's (:mod:`.keep`)
    keep_colour_swaps: tuple = ()       # px: also keep the colour of the swap at each (G up to it, start model above)
    chroma_grid: int = CHROMA_SIZE      # keep_colour's chroma cells per side (finer: small colour fringes held too)
    learn_region: str | None = None     # "eyes" or a mask image: learn the target there, keep the start model's elsewhere
    region_weight: float = 1.0          # weight of the L1 averaged over the region alone (its pixels count more)
    keep_faces: float = 0.0             # share of samples at random faces' latents, held to the start model outside the region
    snapshot_kimg: float = 0.8
    log_every: int = 10


def latent_layers(G: Generator, resolution: int) -> int:
    """Index of the first W+ layer the synthesis block at ``resolution`` px takes (each block
    takes its convs' latents; toRGB shares the next conv's)."""
    first = 0
    for res in G.synthesis.block_resolutions:
        if res == resolution:
            return first
        first += getattr(G.synthesis, f"b{res}").num_conv
    raise StylemixError(f"{resolution} px is not one of the generator's resolutions")


def standardised_grey(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, 1, H, W): each image's grey with its mean 0 and spread 0.5 (about
    the [-1, 1] range SSIM's constants assume): light and dark, not brightness or colour."""
    grey = images.mean(dim=1, keepdim=True)
    grey = grey - grey.mean(dim=(2, 3), keepdim=True)
    return 0.5 * grey / (grey.std(dim=(2, 3), keepdim=True) + 1e-4)


@torch.no_grad()
def invert_pairs(encoder, images: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """W+ latents (N, num_ws, w_dim) of uint8 images (N, C, R, R), in chunks."""
    x = images.float().div(127.5).sub(1)
    return torch.cat([encoder.encode(x[i:i + chunk]) for i in range(0, len(x), chunk)])


class PairedObjective(Objective):
    """G draws each stylised image at its latent; one phase (G)."""

    tag, config_key = CHECKPOINT_TAG, "paired_config"

    def __init__(self, G: Generator, data: ImageFolder, latents: torch.Tensor, config: PairedConfig,
                 latents_flipped: torch.Tensor | None = None, device: str = "cpu",
                 reference: Generator | None = None, made_from: str | None = None):
        """``latents`` (N, num_ws, w_dim): the base's W+ of ``data``'s images, in order;
        ``latents_flipped`` those of the mirrored images (needed when ``config.xflip``);
        ``reference``: the model keep_colour holds to (default: G as it starts here);
        ``made_from``: the :func:`images_fingerprint` of the images the latents were made from
        (a checkpoint's ``images_sha256``): other images are refused, even in the same number."""
        if G.config.c_dim:
            raise StylemixError("training conditional generators is not supported")
        if data.resolution != G.img_resolution:
            raise StylemixError(f"data is {data.resolution} px but the generator makes {G.img_resolution} px")
        expected = (len(data), G.num_ws, G.w_dim)
        for name, lat in (("latents", latents), ("mirrored latents", latents_flipped)):
            if lat is not None and tuple(lat.shape) != expected:
                raise StylemixError(f"{name} have shape {list(lat.shape)}, not {list(expected)} (one W+ "
                                    "per training image): the folder changed since the pairs were made")
        if config.xflip and latents_flipped is None:
            raise StylemixError("xflip needs the mirrored images' latents")
        check_block_options(G, config.freeze_g_above, config.freeze_g_upto, **{"--mix-from": config.mix_from})
        if not config.keep_colour >= 0:
            raise StylemixError(f"--keep-colour {config.keep_colour:g} is not a weight: give 0 (off) or more")
        if config.keep_faces and not config.learn_region:
            raise StylemixError("--keep-faces needs --learn-region: random faces are held to the start model outside it")
        if not 0 <= config.keep_faces <= 1:
            raise StylemixError(f"--keep-faces {config.keep_faces:g} is not a share between 0 and 1")
        if not config.region_weight >= 0:
            raise StylemixError(f"--region-weight {config.region_weight:g} is not a weight: give 0 or more")
        if not 0 <= config.mixing <= 1:
            raise StylemixError(f"--mixing {config.mixing:g} is not a share between 0 and 1")
        if not 1 <= config.chroma_grid <= G.img_resolution:
            raise StylemixError(f"--keep-chroma-grid {config.chroma_grid} is not a grid of 1 to "
                                f"{G.img_resolution} cells per side (the model's {G.img_resolution} px)")
        if config.chroma_grid != PairedConfig.chroma_grid and not config.keep_colour:
            raise StylemixError("--keep-chroma-grid needs --keep-colour (its weight)")
        for res in config.keep_colour_swaps:
            check_block_options(G, config.freeze_g_above, config.freeze_g_upto, **{"--keep-colour-swap": res})
            if not config.keep_colour:
                raise StylemixError("--keep-colour-swap needs --keep-colour (its weight)")
        if config.mix_from is None:
            config = dataclasses.replace(config, mix_from=min(DEFAULT_MIX_FROM, G.img_resolution))
        self.config, self.data, self.device = config, data, device
        self.G = G.to(device).train().requires_grad_(False)
        self.G.forget_file_metadata()
        self.images_sha256 = images_fingerprint(data.images)
        if made_from is not None and made_from != self.images_sha256:
            raise StylemixError(f"{data.folder} does not hold the images this run's pairs were made from "
                                "(same folder, same files, unchanged): give that folder, or start a new "
                                "run from a model file with --encoder")
        self.latents = latents.float().cpu()
        self.latents_flipped = latents_flipped.float().cpu() if latents_flipped is not None else None
        self.G_opt = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=(0.0, 0.99), eps=1e-8)
        frozen = frozen_generator_parameters(self.G, config.freeze_g_above, True, config.freeze_g_upto,
                                             config.freeze_noise)
        self._phases = [Phase("G", self.G, self.G_opt, frozen)]
        self._mixed = torch.arange(G.num_ws) >= latent_layers(G, config.mix_from)
        self.region = region_mask(config.learn_region, G.img_resolution).to(device) if config.learn_region else None
        self.reference = None
        if config.keep_colour or self.region is not None:
            self.reference = (reference if reference is not None else copy.deepcopy(self.G)).to(device)
            self.reference.eval().requires_grad_(False)

    def networks(self):
        nets = {"G": self.G}
        if self.reference is not None:
            nets["G_reference"] = self.reference
        return nets

    def optimizers(self):
        return {"G": self.G_opt}

    def phases(self, state):
        return self._phases

    def describe(self) -> str:
        cfg = self.config
        swaps = "".join(f" and the swap at {r} px's" for r in cfg.keep_colour_swaps)
        grid = f" on a {cfg.chroma_grid}×{cfg.chroma_grid} chroma grid" if cfg.chroma_grid != PairedConfig.chroma_grid else ""
        frozen = "".join([frozen_blocks_phrase(cfg.freeze_g_above, cfg.freeze_g_upto),
                          ", grey pairs" if cfg.grey_pairs else "",
                          f", keep colour {cfg.keep_colour:g}{grid}{swaps}" if cfg.keep_colour else "",
                          f", learning only in the region {cfg.learn_region}" if cfg.learn_region else "",
                          f", {cfg.keep_faces:.0%} random faces kept outside it" if cfg.keep_faces else ""])
        return (f"paired fine-tune at {self.G.img_resolution} px on {len(self.data)} images and their "
                f"latents ({cfg.mixing:.0%} with random latents from {cfg.mix_from} px up{frozen})")

    def accumulate_gradients(self, phase: str, state: RunState, rng: torch.Generator,
                             size: int) -> dict[str, float]:
        cfg = self.config
        idx = torch.randint(len(self.data), (size,), generator=rng)
        target = self.data.images[idx].float().div(127.5).sub(1)
        ws = self.latents[idx].clone()
        if cfg.xflip:
            flip = torch.rand(size, generator=rng) < 0.5
            target[flip] = target[flip].flip(-1)
            ws[flip] = self.latents_flipped[idx[flip]]
        else:
            flip = torch.zeros(size, dtype=torch.bool)
        z = torch.randn(size, self.G.z_dim, generator=rng)
        mix = (torch.rand(size, generator=rng) < cfg.mixing).view(-1, 1) & self._mixed.view(1, -1)
        face = torch.rand(size, generator=rng) < cfg.keep_faces if cfg.keep_faces else torch.zeros(size, dtype=torch.bool)
        target, ws, z, mix, flip, face = (t.to(self.device) for t in (target, ws, z, mix, flip, face))
        ref = None
        with torch.no_grad():
            ws = torch.where(mix.unsqueeze(-1), self.G.mapping(z), ws)
            if face.any():   # a random face's whole W+ (a fresh z), not only its high layers
                ws[face] = self.G.mapping(torch.randn(int(face.sum()), self.G.z_dim, generator=rng).to(self.device))
            if self.reference is not None:
                ref = self.reference.synthesis(ws, noise_mode="const")
        image = self.G.synthesis(ws, noise_mode="const")
        if self.region is not None:   # a mirrored face's region is the mirrored region
            with torch.no_grad():
                mask = torch.where(flip.view(-1, 1, 1, 1), self.region.flip(-1), self.region)
                # a random face has no stylised image: inside the region it is its own target
                inside = torch.where(face.view(-1, 1, 1, 1), image.detach(), target)
                target = mask * inside + (1 - mask) * ref
                mask = mask * (~face).view(-1, 1, 1, 1)   # the region's own L1: stylised samples only
        drawn, wanted = (standardised_grey(image), standardised_grey(target)) if cfg.grey_pairs else (image, target)
        l1 = (drawn - wanted).abs().mean()
        ssim = pooled_ssim_loss(drawn, wanted)
        coarse = (F.avg_pool2d(drawn, 4) - F.avg_pool2d(wanted, 4)).abs().mean()
        loss = l1 + cfg.ssim_weight * ssim + cfg.coarse_weight * coarse
        stats = {"L1": l1.item(), "SSIM_loss": ssim.item(), "coarse_L1": coarse.item()}
        if self.region is not None and cfg.region_weight and mask.sum() > 0:
            # a small region (the eyes: 7 % of the image) would otherwise learn slowly, its few
            # pixels outweighed by the rest of the image held to the start model
            inside = ((drawn - wanted).abs() * mask).sum() / (mask.sum() * drawn.shape[1])
            loss, stats["region_L1"] = loss + cfg.region_weight * inside, inside.item()
        if cfg.keep_colour:
            keep, keep_stats = keep_loss(image, ref, colour=cfg.keep_colour, chroma_size=cfg.chroma_grid)
            loss, stats = loss + keep, {**stats, **keep_stats}
            for res in cfg.keep_colour_swaps:
                swapped = self._swap_with_reference(ws, res)
                keep, keep_stats = keep_loss(swapped, ref, colour=cfg.keep_colour, chroma_size=cfg.chroma_grid)
                loss, stats[f"keep_colour_swap{res}"] = loss + keep, keep_stats["keep_colour"]
        loss.backward()
        return stats

    def _swap_with_reference(self, ws: torch.Tensor, r_swap: int) -> torch.Tensor:
        """The layer swap at ``r_swap`` drawn at ``ws``: G's synthesis blocks up to r_swap px
        (trained), the reference's above (fixed)."""
        own = {f"b{r}" for r in self.G.synthesis.block_resolutions if r <= r_swap}
        tensors = {**dict(self.reference.synthesis.named_parameters()), **dict(self.reference.synthesis.named_buffers())}
        tensors.update({n: t for n, t in [*self.G.synthesis.named_parameters(), *self.G.synthesis.named_buffers()]
                        if n.split(".")[0] in own})
        return torch.func.functional_call(self.G.synthesis, tensors, (ws,), {"noise_mode": "const"})

    def checkpoint_extras(self) -> dict:
        extras = {"G_config": self.G.config.to_dict(), "pair_latents": self.latents,
                  "images_sha256": self.images_sha256}
        if self.latents_flipped is not None:
            extras["pair_latents_flipped"] = self.latents_flipped
        return extras

    def write_artifacts(self, out_dir: Path, state: RunState) -> None:
        """generator.safetensors (G) and samples.png (G on seeds 0-31, ψ=1)."""
        self.G.eval()
        write_generator(self.G, out_dir)
        self.G.train()


def images_fingerprint(images: torch.Tensor) -> str:
    """SHA-256 (hex) of a folder's decoded images (uint8, in file order): pairs belong to them."""
    import hashlib
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()


def read_paired_checkpoint(path) -> dict | None:
    """The checkpoint dict if ``path`` (or ``path``/checkpoint.pt) is a paired run's."""
    return read_checkpoint(path, CHECKPOINT_TAG)


def config_with(changes: dict, ckpt: dict | None = None) -> PairedConfig:
    """A run's config: the checkpoint's (a resumed run) or the defaults, with every option given
    (not None in ``changes``) replacing its value."""
    config = PairedConfig(**ckpt["paired_config"]) if ckpt is not None else PairedConfig()
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
