"""The adversarial pieces every objective with a discriminator shares, and the EMA of a network.

StyleGAN2's recipe (Karras et al. 2020, §B; the -ADA code's defaults): the non-saturating
logistic loss, R1 on reals applied lazily every ``r1_interval`` steps (scaled by the interval),
Adam with its learning rate and β₂ corrected for the lazy schedule, γ = 0.0002 · res² / batch
when not given, and the generator's EMA with a half-life counted in images and ramped up at the
start of a run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def r1_gamma(resolution: int, batch: int, gamma: float | None = None) -> float:
    """R1 weight γ: ``gamma`` when given, else StyleGAN2-ADA's heuristic 0.0002 · res² / batch."""
    return gamma if gamma is not None else 0.0002 * resolution ** 2 / batch


def lazy_adam(params, lr: float, interval: int, betas=(0.0, 0.99)) -> torch.optim.Adam:
    """Adam for a network regularised every ``interval`` steps: lr and β scaled by
    interval / (interval + 1), as StyleGAN2 does for lazy regularisation."""
    ratio = interval / (interval + 1)
    return torch.optim.Adam(params, lr=lr * ratio, betas=(betas[0] ** ratio, betas[1] ** ratio), eps=1e-8)


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating loss: softplus(−D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(D, fake: torch.Tensor, real: torch.Tensor, gamma: float, interval: int,
                       with_r1: bool) -> tuple[torch.Tensor, dict[str, float]]:
    """softplus(D(fake)) + softplus(−D(real)), plus γ/2 · interval · ‖∇D(real)‖² on steps
    ``with_r1``. ``D`` is called on both (it may augment). Returns (loss, stats)."""
    real = real.detach().requires_grad_(with_r1)
    real_logits = D(real)
    loss = F.softplus(D(fake.detach())).mean() + F.softplus(-real_logits).mean()
    stats = {}
    if with_r1:
        grad, = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        r1 = grad.square().sum(dim=[1, 2, 3]).mean()
        loss = loss + r1 * (gamma / 2) * interval
        stats["R1"] = r1.item()
    stats["D_loss"] = loss.item()
    return loss, stats


def ema_beta(batch: int, nimg: int, half_life_kimg: float, rampup: float | None = 0.05) -> float:
    """Per-step decay of an EMA whose half-life is ``half_life_kimg`` thousand images, capped
    at ``rampup`` × images shown so far (a young run's EMA follows it closely)."""
    half_life = half_life_kimg * 1000
    if rampup is not None:
        half_life = min(half_life, nimg * rampup)
    return 0.5 ** (batch / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, source: torch.nn.Module, beta: float) -> None:
    """ema ← β·ema + (1−β)·source for parameters; buffers (w_avg, noise) copied."""
    for p_ema, p in zip(ema.parameters(), source.parameters()):
        p_ema.lerp_(p, 1 - beta)
    for b_ema, b in zip(ema.buffers(), source.buffers()):
        b_ema.copy_(b)
