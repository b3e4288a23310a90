"""The encoder objective: learn face → W+ for a frozen base, in the shared training loop.

Data: the base's own samples (z → w → image: unlimited, each with its exact latent; half of
them style-mixed, so the targets include per-layer W+ latents) and, optionally, teacher pairs
(real-looking faces with the w they were drawn from; :class:`~.dataset.TeacherPairs`) or a
folder of aligned faces (no latent: reconstruction only). Every input is augmented the way
dlib alignment leaves real photos (small shifts and scale, colour, blur, JPEG), never the
target. Losses: latent regression (squared error in W, over the mean per-dimension variance)
where the latent is known;
reconstruction through the frozen base (L1 + SSIM over pooled scales) on part of the batch every
``recon_interval`` steps (it costs a backward pass through the generator); the offset
regulariser (e4e's L2 on per-layer offsets). Held-out metrics at each snapshot: latent error and
PSNR/SSIM on fixed held-out samples, and with held-out teacher faces their PSNR/SSIM and dlib's
identity distance between face and reconstruction.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..encoder import Encoder, generator_fingerprint, save_encoder
from ..errors import StylemixError
from ..project import feature_distance, pooled_ssim_loss, psnr, ssim
from .adversarial import ema_beta, update_ema
from .dataset import ImageFolder, TeacherPairs
from .loop import LoopConfig, Objective, Phase, RunState, read_checkpoint

CHECKPOINT_TAG = "stylemix-encoder-trainer"
ENCODER_NAME = "encoder.safetensors"
HELD_OUT_SEED = 1_000_000   # held-out samples: z from RandomState(HELD_OUT_SEED + i), never drawn in training


@dataclass
class EncoderTrainConfig(LoopConfig):
    batch: int = 8
    kimg: float = 50.0
    lr: float = 0.001
    latent_weight: float = 1.0
    recon_weight: float = 1.0       # L1 + (1 − SSIM) of the base's drawing of the encoding
    recon_batch: int = 4            # images of the batch that get the reconstruction term
    recon_interval: int = 4         # … every this many steps
    feature_weight: float = 0.1     # distance of the base file's D features, when it has a D
    offset_weight: float = 0.1      # e4e's L2 on per-layer offsets (units of w spread)
    mixing: float = 0.5             # share of base samples drawn style-mixed (W+ targets)
    data_share: float = 0.5         # share of the batch from --data, when given
    ema_kimg: float = 1.0
    augment: bool = True
    snapshot_kimg: float = 2.0
    log_every: int = 10
    val_count: int = 32


# --- augmentation ----------------------------------------------------------------------------
def _jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    arr = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    mode = "L" if arr.shape[2] == 1 else "RGB"
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if mode == "L" else arr, mode).save(buf, "JPEG", quality=quality)
    out = np.asarray(Image.open(buf).convert(mode), dtype=np.float32)
    out = out[..., None] if out.ndim == 2 else out
    return torch.from_numpy(out).permute(2, 0, 1).div(127.5).sub(1)


def alignment_augment(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """What dlib's FFHQ alignment leaves on real photos, drawn per image: shifts of up to 3 %
    and scale within ±5 % (reflected borders), brightness/contrast/saturation jitter, a Gaussian
    blur (σ up to 1 px at 128 px) for half, JPEG (quality 40-95) for a quarter. (N, C, R, R)
    in [-1, 1] → the same shape."""
    n, c, r, _ = images.shape
    u = lambda *shape: torch.rand(*shape, generator=rng)  # noqa: E731
    scale = 1 + (u(n) - 0.5) * 0.1
    shift = (u(n, 2) - 0.5) * 0.06 * 2
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    x = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    x = x + (u(n, 1, 1, 1) - 0.5) * 0.2
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - mean) * (0.85 + u(n, 1, 1, 1) * 0.3) + mean
    if c == 3:
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * (0.8 + u(n, 1, 1, 1) * 0.4) + grey
    sigma = u(n) * r / 128
    for i in range(n):
        if u(1).item() < 0.5 and sigma[i] > 0.2:
            k = torch.arange(-2, 3, dtype=torch.float32)
            g = torch.exp(-k ** 2 / (2 * sigma[i] ** 2))
            g = g / g.sum()
            xi = F.pad(x[i:i + 1], (2, 2, 2, 2), mode="reflect")
            xi = F.conv2d(xi, g.view(1, 1, 1, 5).repeat(c, 1, 1, 1), groups=c)
            x[i] = F.conv2d(xi, g.view(1, 1, 5, 1).repeat(c, 1, 1, 1), groups=c)[0]
    for i in range(n):
        if u(1).item() < 0.25:
            x[i] = _jpeg(x[i], 40 + int(u(1).item() * 55))
    return x.clamp(-1, 1)


# --- the objective ------------------------------------------------------------------------------
class EncoderObjective(Objective):
    """Encoder E (trained) against a frozen base G; one phase, E."""

    tag, config_key = CHECKPOINT_TAG, "encoder_config"

    def __init__(self, E: Encoder, G, config: EncoderTrainConfig,
                 data: TeacherPairs | ImageFolder | None = None, val: TeacherPairs | None = None,
                 E_ema: Encoder | None = None, base_name: str = "", device: str = "cpu",
                 discriminator=None):
        cfg = E.config
        if (cfg.resolution, cfg.num_ws, cfg.w_dim, cfg.img_channels) != \
                (G.img_resolution, G.num_ws, G.w_dim, G.img_channels):
            raise StylemixError("the encoder's shapes do not match the base generator")
        if G.c_dim:
            raise StylemixError("encoders for class-conditional bases are not supported")
        if data is not None and data.resolution != G.img_resolution:
            raise StylemixError(f"--data is {data.resolution} px but the base makes {G.img_resolution} px")
        self.config, self.data, self.val, self.device = config, data, val, device
        self.G = copy.deepcopy(G).to(device).eval().requires_grad_(False)
        self.base_fingerprint, self.base_name = generator_fingerprint(G), base_name
        self.D = discriminator.to(device).eval().requires_grad_(False) if discriminator is not None else None
        self.E = E.to(device).train().requires_grad_(False)
        self.E_ema = (E_ema if E_ema is not None else copy.deepcopy(E)).to(device).eval().requires_grad_(False)
        self.E_opt = torch.optim.Adam(self.E.parameters(), lr=config.lr, betas=(0.9, 0.99))
        self._phases = [Phase("E", self.E, self.E_opt)]
        self._val_samples = self._held_out_samples(config.val_count)

    def networks(self):
        return {"E": self.E, "E_ema": self.E_ema}

    def optimizers(self):
        return {"E": self.E_opt}

    def phases(self, state):
        return self._phases

    def describe(self) -> str:
        what = "the base's own samples"
        if self.data is not None:
            kind = "teacher pairs" if isinstance(self.data, TeacherPairs) else "images"
            what += f" and {len(self.data)} {kind}"
        return f"training an encoder for the {self.G.img_resolution} px base on {what}"

    # --- data --------------------------------------------------------------------------------
    @torch.no_grad()
    def _samples(self, n: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, ws targets) drawn from the base: z → w (half style-mixed) → image."""
        G = self.G
        z = torch.randn(n, G.z_dim, generator=rng).to(self.device)
        ws = G.mapping(z)
        mixed = torch.rand(n, generator=rng) < self.config.mixing
        if mixed.any():
            ws2 = G.mapping(torch.randn(n, G.z_dim, generator=rng).to(self.device))
            cut = torch.randint(1, G.num_ws, (n,), generator=rng)
            take = (mixed.view(-1, 1) & (torch.arange(G.num_ws).view(1, -1) >= cut.view(-1, 1))).to(self.device)
            ws = torch.where(take.unsqueeze(-1), ws2, ws)
        return G.synthesis(ws, noise_mode="random").clamp(-1, 1), ws

    def _held_out_samples(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.from_numpy(np.stack([np.random.RandomState(HELD_OUT_SEED + i).randn(self.G.z_dim)
                                       for i in range(n)])).float().to(self.device)
        with torch.no_grad():
            ws = self.G.mapping(z)
            return self.G.synthesis(ws, noise_mode="const").clamp(-1, 1), ws

    def _batch(self, rng: torch.Generator, n: int):
        """(inputs, targets, ws targets, mask of the rows whose latent is known) for n samples."""
        cfg = self.config
        from_data = 0 if self.data is None else int(round(n * cfg.data_share))
        images, ws = self._samples(n - from_data, rng)
        known = torch.ones(len(images), dtype=torch.bool)
        if from_data:
            if isinstance(self.data, TeacherPairs):
                w, img = self.data.batch(from_data, rng)
                extra_ws = w.to(self.device)[:, None].repeat(1, self.G.num_ws, 1)
                extra_known = torch.ones(from_data, dtype=torch.bool)
            else:
                img = self.data.batch(from_data, rng, xflip=True).float().div(127.5).sub(1)
                extra_ws = torch.zeros(from_data, self.G.num_ws, self.G.w_dim, device=self.device)
                extra_known = torch.zeros(from_data, dtype=torch.bool)
            images = torch.cat([images, img.to(self.device)])
            ws = torch.cat([ws, extra_ws])
            known = torch.cat([known, extra_known])
        inputs = alignment_augment(images.cpu(), rng).to(self.device) if cfg.augment else images
        return inputs, images, ws, known.to(self.device)

    # --- losses ------------------------------------------------------------------------------
    def accumulate_gradients(self, phase: str, state: RunState, rng: torch.Generator,
                             size: int) -> dict[str, float]:
        cfg = self.config
        inputs, targets, ws_target, known = self._batch(rng, size)
        ws, offsets = self.E(inputs)
        stats = {}
        loss = cfg.offset_weight * offsets.square().mean()
        stats["offsets"] = offsets.square().mean().sqrt().item()
        if known.any():
            # Squared error in W itself (over the mean per-dimension variance): W is strongly
            # anisotropic, and its few high-variance directions are what a face looks like;
            # per-dimension units would spend the gradient on the many faint ones.
            diff = (ws - ws_target)[known]
            err = diff.square().mean() / self.E.w_std.square().mean()
            loss = loss + cfg.latent_weight * err
            stats["latent"] = (diff / self.E.w_std).square().mean().sqrt().item()
        if cfg.recon_weight > 0 and (state.step % cfg.recon_interval == 0 or not known.all()):
            share = max(1, round(cfg.recon_batch * size / cfg.batch))  # of this chunk
            pick = torch.arange(len(ws)) >= len(ws) - share  # the rows from --data first
            img = self.G.synthesis(ws[pick], noise_mode="const")
            l1 = (img - targets[pick]).abs().mean()
            structure = pooled_ssim_loss(img, targets[pick])
            loss = loss + cfg.recon_weight * (l1 + structure)
            stats.update({"L1": l1.item(), "1-SSIM": structure.item()})
            if self.D is not None and cfg.feature_weight:
                with torch.no_grad():
                    wanted = self.D.features(targets[pick])
                features = feature_distance(self.D.features(img), wanted)
                loss = loss + cfg.feature_weight * features
                stats["D_features"] = features.item()
        loss.backward()
        return stats

    def end_step(self, state: RunState) -> None:
        cfg = self.config
        update_ema(self.E_ema, self.E, ema_beta(cfg.batch, state.nimg, cfg.ema_kimg))

    # --- snapshots ---------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        images, ws = self._val_samples
        pred = self.E_ema.encode(images)
        rec = self.G.synthesis(pred, noise_mode="const").clamp(-1, 1)
        out = {"val_latent": ((pred - ws) / self.E_ema.w_std).square().mean().sqrt().item(),
               "val_psnr": float(np.mean([psnr(a[None], b[None]) for a, b in zip(rec, images)])),
               "val_ssim": float(np.mean([ssim(a[None], b[None]).item() for a, b in zip(rec, images)]))}
        if self.val is not None:
            out.update(teacher_scores(self.E_ema, self.G, self.val, self.config.val_count))
        return out

    def write_artifacts(self, out_dir: Path, state: RunState) -> None:
        """encoder.safetensors (E_ema, naming its base) and samples.png: held-out inputs (top)
        over the base's drawing of their encodings (bottom)."""
        from ..render import make_grid, save_png, to_uint8
        save_encoder(self.E_ema, out_dir / ENCODER_NAME, self.base_fingerprint, self.base_name,
                     info={"kimg": state.nimg / 1000, "seconds": round(state.seconds),
                           "data": self.describe()})
        source = self.val.images[:8].float().div(127.5).sub(1).to(self.device) if self.val is not None \
            else self._val_samples[0][:8]
        with torch.no_grad():
            rec = self.G.synthesis(self.E_ema.encode(source), noise_mode="const")
        save_png(make_grid(to_uint8(torch.cat([source, rec]).cpu()), columns=len(source)),
                 out_dir / "samples.png", scale=max(1, 128 // self.G.img_resolution))

    def checkpoint_extras(self) -> dict:
        import dataclasses
        return {"E_arch": dataclasses.asdict(self.E.config), "base_fingerprint": self.base_fingerprint,
                "base_name": self.base_name}

    def after_snapshot(self) -> str | None:
        if isinstance(self.data, TeacherPairs):
            added = self.data.refresh()
            return f"{added} new teacher pairs: {len(self.data)} in all" if added else None
        return None


@torch.no_grad()
def teacher_scores(E: Encoder, G, pairs: TeacherPairs, count: int, identity_count: int = 16) -> dict[str, float]:
    """Held-out teacher faces through encoder → base: PSNR/SSIM against the face, latent error
    against the teacher's w, and (first ``identity_count``) dlib's descriptor distance between
    face and reconstruction (same person below 0.6) with the share under 0.6."""
    from ..identity import SAME_PERSON, distance, face_descriptor
    from ..render import to_pil, to_uint8
    n = min(count, len(pairs))
    device = E.w_avg.device
    faces = pairs.images[:n].float().div(127.5).sub(1).to(device)
    pred = E.encode(faces)
    rec = G.synthesis(pred, noise_mode="const").clamp(-1, 1)
    w = pairs.w[:n].to(device)[:, None]
    out = {"teacher_psnr": float(np.mean([psnr(a[None], b[None]) for a, b in zip(rec, faces)])),
           "teacher_ssim": float(np.mean([ssim(a[None], b[None]).item() for a, b in zip(rec, faces)])),
           "teacher_latent": ((pred - w) / E.w_std).square().mean().sqrt().item()}
    dists = []
    for face, drawn in zip(to_uint8(faces[:identity_count].cpu()), to_uint8(rec[:identity_count].cpu())):
        a, b = face_descriptor(to_pil(face)), face_descriptor(to_pil(drawn))
        dists.append(distance(a, b) if a is not None and b is not None else float("nan"))
    found = [d for d in dists if d == d]
    if found:
        out["teacher_id_distance"] = float(np.mean(found))
        out["teacher_id_same"] = sum(d < SAME_PERSON for d in found) / len(dists)
    return out


def read_encoder_checkpoint(path) -> dict | None:
    """The encoder trainer's checkpoint in ``path`` (a run folder), or None."""
    return read_checkpoint(path, CHECKPOINT_TAG)
