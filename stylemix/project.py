"""Find the latent of a face in a generator ("projection"), the first half of toonifying a photo.

The recipe is StyleGAN2's: start at the mean w, optimise w with Adam under a learning-rate
ramp while a decaying amount of noise is added to w (to escape poor local optima), optimise the
per-layer noise maps too and keep them unit-variance and spatially uncorrelated with a
regulariser.  Optionally a second phase frees each layer's w (W+), which fits better but moves
off the model's usual latents.  The loss needs no downloaded weights: pixel error plus a
structural (SSIM over pooled scales) term; a perceptual LPIPS/VGG16 term can be added when the user
has those weights locally (see :mod:`stylemix.perceptual`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .errors import StylemixError
from .io import atomic_write
from .networks import Generator
from .render import class_vector

ProgressFn = Callable[[int, int, float], None]  # (step, total_steps, loss)


@dataclass
class ProjectionConfig:
    steps: int = 200              # W phase
    # W+ phase after it (per-layer latents, lr × 0.1); None = ¾ of ``steps``. The W+ phase is
    # what keeps a person recognisable (dlib's descriptor distance to the photo 0.38–0.49
    # instead of 0.47–0.71 after W alone on the default pair; bench/toonify_identity.py).
    w_plus_steps: int | None = None
    lr: float = 0.1
    lr_rampup: float = 0.05       # fraction of the phase
    lr_rampdown: float = 0.25
    initial_w_noise: float = 0.05  # × w_std, decaying to 0 at noise_ramp
    noise_ramp: float = 0.75
    optimise_noise: bool = True
    noise_reg_weight: float = 1e5
    ssim_weight: float = 1.0
    perceptual_weight: float = 1.0
    discriminator_weight: float = 0.1  # used when the model file has a discriminator
    max_loss_resolution: int = 256  # larger images are compared downsampled
    early_stop_patience: int = 60   # steps without 0.1 % loss improvement (W phase after ramps)
    w_plus_spread_weight: float = 0.0  # W+ phase: weight of the layers' spread around their mean w
    seed: int = 0

    def __post_init__(self):
        if self.w_plus_steps is None:
            self.w_plus_steps = round(0.75 * self.steps)
        if self.steps < 1 or self.w_plus_steps < 0:
            raise StylemixError("projection needs at least one step")


@dataclass
class ProjectionResult:
    """The fitted latent: ws (1, num_ws, w_dim) and the noise maps, plus how it went;
    ``init_ws`` (same shape) is the latent a refinement started from (an encoder's), None when
    the optimisation started from the mean w: toonify draws the toon between the two
    (:func:`stylemix.toonify.toon_latent`)."""

    ws: torch.Tensor
    noise: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)  # per step: step, loss, psnr, seconds
    config: ProjectionConfig | None = None
    init_ws: torch.Tensor | None = None

    def save(self, path) -> None:
        arrays = {"ws": self.ws.detach().cpu().numpy()}
        if self.init_ws is not None:
            arrays["init_ws"] = self.init_ws.detach().cpu().numpy()
        arrays.update({f"noise/{k}": v.detach().cpu().numpy() for k, v in self.noise.items()})
        arrays["history"] = np.array([[h["step"], h["loss"], h["psnr"], h["seconds"]]
                                      for h in self.history], dtype=np.float64).reshape(-1, 4)
        with atomic_write(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

    @classmethod
    def load(cls, path) -> "ProjectionResult":
        try:
            with np.load(path, allow_pickle=False) as data:
                ws = torch.from_numpy(data["ws"]).float()
                init_ws = torch.from_numpy(data["init_ws"]).float() if "init_ws" in data.files else None
                noise = {k[len("noise/"):]: torch.from_numpy(data[k]).float()
                         for k in data.files if k.startswith("noise/")}
                history = [dict(zip(("step", "loss", "psnr", "seconds"), row.tolist()))
                           for row in data["history"]] if "history" in data.files else []
        except (OSError, ValueError, KeyError) as exc:
            raise StylemixError(f"{Path(path).name} is not a stylemix latent file ({exc})") from None
        if ws.ndim != 3 or ws.shape[0] != 1:
            raise StylemixError(f"{Path(path).name} holds ws of shape {list(ws.shape)}, expected [1, num_ws, w_dim]")
        if init_ws is not None and init_ws.shape != ws.shape:
            raise StylemixError(f"{Path(path).name} holds init_ws of shape {list(init_ws.shape)}, not ws's {list(ws.shape)}")
        return cls(ws, noise, history, init_ws=init_ws)


def noise_buffers(G: Generator) -> dict[str, torch.Tensor]:
    """The generator's constant noise maps by module name (``synthesis.b8.conv0`` …)."""
    return {name: m.noise_const for name, m in G.named_modules()
            if "noise_const" in getattr(m, "_buffers", {})}


def checked_noise(G: Generator, maps: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    """``maps`` (a latent's noise maps by layer name) checked against ``G``'s layers, on G's
    device, ready for ``G.synthesis(ws, noise=…)``; None when there are none. The maps are an
    argument of each render, never swapped into ``G``: the pair's networks are shared by every
    visitor of the app, and a projection in one session must not reach another's render."""
    if not maps:
        return None
    stored = noise_buffers(G)
    out = {}
    for name, value in maps.items():
        if name not in stored:
            raise StylemixError(f"latent's noise map '{name}' does not fit this model")
        if stored[name].shape != value.shape:
            raise StylemixError(f"latent's noise map '{name}' has the wrong size for this model")
        out[name] = value.to(stored[name].device)
    return out


# ITU-R BT.601 luma weights (what PIL's convert("L") uses): R, G, B → grey.
LUMA_BT601 = (0.299, 0.587, 0.114)


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) images with ``channels`` channels: RGB → grey by BT.601 luma, grey → RGB by
    repeating, an alpha channel dropped.  Photos are RGB; greyscale models take one channel."""
    have = images.shape[1]
    if have in (2, 4):  # grey + alpha, RGB + alpha
        images, have = images[:, : have - 1], have - 1
    if have == channels:
        return images
    if have == 3 and channels == 1:
        weights = torch.tensor(LUMA_BT601, dtype=images.dtype, device=images.device)
        return (images * weights.reshape(1, 3, 1, 1)).sum(1, keepdim=True)
    if have == 1:
        return images.repeat(1, channels, 1, 1)
    raise StylemixError(f"cannot turn a {have}-channel image into the {channels} channels this model draws")


def image_to_tensor(image, device="cpu", channels: int = 3) -> torch.Tensor:
    """PIL image / HW or HWC uint8 array → (1, channels, H, W) in [-1, 1] (see match_channels)."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    x = torch.from_numpy(arr).permute(2, 0, 1)[None] / 127.5 - 1
    return match_channels(x, channels).to(device)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio (dB) of images in [-1, 1]."""
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).square().mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


def _gaussian_1d(size: int = 11, sigma: float = 1.5, device="cpu") -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-x.square() / (2 * sigma ** 2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean structural similarity of images in [-1, 1] (Wang et al. 2004: Gaussian window 11,
    σ 1.5, C1 = 0.01², C2 = 0.03² on a [0, 1] scale). The window is separable, so the five local
    means are one horizontal and one vertical depthwise pass over all of them at once."""
    a, b = (a + 1) / 2, (b + 1) / 2
    channels = a.shape[1]
    size = min(11, a.shape[-1], a.shape[-2])
    g = _gaussian_1d(size, 1.5, a.device).to(a.dtype)
    stack = torch.cat([a, b, a * a, b * b, a * b], dim=1)
    k = stack.shape[1]
    stack = F.conv2d(stack, g.view(1, 1, 1, size).expand(k, 1, 1, size), groups=k)
    stack = F.conv2d(stack, g.view(1, 1, size, 1).expand(k, 1, size, 1), groups=k)
    mu_a, mu_b, aa, bb, ab = stack.split(channels, dim=1)
    var_a, var_b, cov = aa - mu_a.square(), bb - mu_b.square(), ab - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2))
    return s.mean()


def pooled_ssim_loss(a: torch.Tensor, b: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """1 − SSIM averaged over the image and up to ``scales`` − 1 average-pooled halvings:
    structure at several sizes, no weights needed. Not Wang et al.'s MS-SSIM (which multiplies
    contrast/structure terms of five scales with fixed exponents); the name says what it is."""
    loss = 0.0
    for i in range(scales):
        loss = loss + (1 - ssim(a, b))
        if min(a.shape[-2:]) < 16 or i == scales - 1:
            return loss / (i + 1)
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return loss / scales


def _noise_regulariser(maps: list[torch.Tensor]) -> torch.Tensor:
    """Penalise spatial autocorrelation of the noise maps at every scale (they should stay noise)."""
    reg = 0.0
    for v in maps:
        v = v[None, None]
        while True:
            reg = reg + (v * torch.roll(v, 1, dims=3)).mean().square()
            reg = reg + (v * torch.roll(v, 1, dims=2)).mean().square()
            if v.shape[-1] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return reg


def _lr_schedule(t: float, cfg: ProjectionConfig) -> float:
    ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return ramp * min(1.0, t / cfg.lr_rampup) if cfg.lr_rampup > 0 else ramp


@torch.no_grad()
def w_statistics(G: Generator, samples: int = 10_000, seed: int = 123,
                 class_idx: int | None = None) -> tuple[torch.Tensor, float]:
    """Mean w (1, 1, w_dim) and its spread (root mean squared distance to the mean); for a
    conditional model, of the chosen class (which must be given)."""
    if G.c_dim:
        c = class_vector(G, class_idx, samples)
        z = torch.from_numpy(np.random.RandomState(seed).randn(samples, G.z_dim)).float()
        w = G.mapping(z.to(c.device), c)[:, 0]
    else:
        w = G.sample_w(samples, seed)
    w_avg = w.mean(0)
    return w_avg.reshape(1, 1, -1), float(((w - w_avg).square().sum() / samples).sqrt())


def feature_distance(feats: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Mean squared feature difference per layer, scaled by the target's energy."""
    return sum(F.mse_loss(f, t) / (t.square().mean() + 1e-8) for f, t in zip(feats, targets)) / len(feats)


def project(G: Generator, target, config: ProjectionConfig | None = None,
            progress: ProgressFn | None = None,
            perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
            discriminator=None, class_idx: int | None = None,
            init_ws: torch.Tensor | None = None,
            on_latent: Callable[[int, torch.Tensor], None] | None = None) -> ProjectionResult:
    """Fit ws (and noise maps) so that ``G`` renders ``target`` (PIL image, or (1, C, H, W)
    tensor in [-1, 1]); an RGB target of a greyscale model becomes its BT.601 luma.

    From the mean w: ``config.steps`` W steps, then ``config.w_plus_steps`` per-layer steps.
    With ``init_ws`` (1, num_ws, w_dim), e.g. an encoder's latent, the W phase is skipped and
    the ``w_plus_steps`` per-layer steps refine that start (0: the start itself).

    Deterministic for ``config.seed`` on a given device. ``perceptual`` is an optional extra
    distance (e.g. :class:`stylemix.perceptual.LPIPS`) on RGB images in [-1, 1];
    ``discriminator`` (the model's own D) adds a distance between its block features.  A
    class-conditional model needs ``class_idx``: projection starts from that class's mean w.
    ``on_latent(step, ws)`` sees the latent (1, num_ws, w_dim, a copy) after every step: what
    the app shows while a refinement runs; an exception it raises stops the projection.
    """
    cfg = config or ProjectionConfig()
    device = G.mapping.w_avg.device
    target = target if isinstance(target, torch.Tensor) else image_to_tensor(target)
    if target.ndim != 4 or target.shape[0] != 1:
        raise StylemixError(f"the target must be one image, not a tensor of shape {list(target.shape)}")
    target = match_channels(target.to(device).float(), G.img_channels)
    res = G.img_resolution
    if target.shape[-2:] != (res, res):
        raise StylemixError(f"the face must be a {res}×{res} image for this model "
                            f"(got {list(target.shape[-2:])}); align it to {res} px first")
    gen = torch.Generator().manual_seed(cfg.seed)
    w_avg, w_std = w_statistics(G, class_idx=class_idx)

    def compare_size(x):
        return F.interpolate(x, size=cfg.max_loss_resolution, mode="area") if res > cfg.max_loss_resolution else x

    target_small = compare_size(target)
    if discriminator is not None:
        with torch.no_grad():
            target_feats = discriminator.features(target)
    names = list(noise_buffers(G))
    # Noise maps are fitted from fresh random ones; without that, the model's own maps are used.
    maps = {n: torch.randn(noise_buffers(G)[n].shape, generator=gen).to(device) for n in names} \
        if cfg.optimise_noise else {}
    for m in maps.values():
        m.requires_grad_(cfg.optimise_noise)
    history: list[dict] = []
    start = time.perf_counter()
    total = cfg.w_plus_steps if init_ws is not None else cfg.steps + cfg.w_plus_steps

    def run_phase(latent: torch.Tensor, steps: int, first_step: int, broadcast: bool, lr: float):
        params = [latent] + (list(maps.values()) if cfg.optimise_noise else [])
        opt = torch.optim.Adam(params, betas=(0.9, 0.999), lr=lr)
        best, since_best = float("inf"), 0
        for i in range(steps):
            t = i / steps
            w_noise_scale = w_std * cfg.initial_w_noise * max(0.0, 1.0 - t / cfg.noise_ramp) ** 2 if broadcast else 0.0
            for group in opt.param_groups:
                group["lr"] = lr * _lr_schedule(t, cfg)
            noisy = latent + torch.randn(latent.shape, generator=gen).to(device) * w_noise_scale
            ws = noisy.repeat(1, G.num_ws, 1) if broadcast else noisy
            synth = G.synthesis(ws, noise_mode="const", noise=maps or None)
            synth_small = compare_size(synth)
            loss = F.mse_loss(synth_small, target_small)
            loss = loss + cfg.ssim_weight * pooled_ssim_loss(synth_small, target_small)
            if perceptual is not None:
                loss = loss + cfg.perceptual_weight * perceptual(
                    match_channels(synth_small, 3), match_channels(target_small, 3)).mean()
            if discriminator is not None:
                loss = loss + cfg.discriminator_weight * feature_distance(
                    discriminator.features(synth), target_feats)
            total_loss = loss + cfg.noise_reg_weight * _noise_regulariser(list(maps.values())) \
                if cfg.optimise_noise else loss
            if not broadcast and cfg.w_plus_spread_weight:
                # e4e's idea for optimisation: keep the per-layer latents near one w, where the
                # transferred model was trained, so the toon stays clean while the face fits.
                spread = (ws - ws.mean(1, keepdim=True)).square().sum(-1).mean() / w_std ** 2
                total_loss = total_loss + cfg.w_plus_spread_weight * spread
            opt.zero_grad(set_to_none=True)
            total_loss.backward()
            opt.step()
            with torch.no_grad():
                for m in maps.values():  # keep the maps zero-mean, unit-variance
                    m -= m.mean()
                    m *= m.square().mean().rsqrt()
            step = first_step + i + 1
            if on_latent is not None:
                on_latent(step, (latent.detach().repeat(1, G.num_ws, 1) if broadcast else latent.detach()).clone())
            value = loss.item()
            history.append({"step": step, "loss": value, "psnr": psnr(synth.detach(), target),
                            "seconds": time.perf_counter() - start})
            if progress is not None:
                progress(step, total, value)
            if value < best * 0.999:
                best, since_best = value, 0
            else:
                since_best += 1
            ramps_done = t > max(cfg.noise_ramp if broadcast else 0.0, cfg.lr_rampup)
            if ramps_done and since_best >= cfg.early_stop_patience:
                break
        return latent

    if init_ws is not None:
        if tuple(init_ws.shape) != (1, G.num_ws, G.w_dim):
            raise StylemixError(f"the starting latent has shape {list(init_ws.shape)}, this model "
                                f"takes [1, {G.num_ws}, {G.w_dim}]")
        ws = init_ws.detach().to(device).float()
    else:
        w = w_avg.clone().requires_grad_(True)  # (1, 1, w_dim)
        w = run_phase(w, cfg.steps, 0, broadcast=True, lr=cfg.lr)
        ws = w.detach().repeat(1, G.num_ws, 1)
    if cfg.w_plus_steps:
        ws = ws.clone().requires_grad_(True)
        ws = run_phase(ws, cfg.w_plus_steps, len(history), broadcast=False, lr=cfg.lr * 0.1).detach()
    return ProjectionResult(ws.detach(), {n: m.detach() for n, m in maps.items()} if history else {},
                            history, cfg, init_ws=None if init_ws is None else init_ws.detach().to(ws.device).float())


@torch.no_grad()
def render_latent(G: Generator, result: ProjectionResult) -> torch.Tensor:
    """Render a projected latent (with its noise maps) through ``G`` — base or any blend of it."""
    noise = checked_noise(G, result.noise)
    ws = result.ws.to(G.mapping.w_avg.device)
    return G.synthesis(ws, noise_mode="const", noise=noise)

