"""Training a decoder on (features, images) pairs: seeded, early-stopped on a validation slice, with progress."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgesplit.attacks.decoders import create_decoder
from edgesplit.errors import AttackError
from edgesplit.progress import Progress, resolve

MIN_SAMPLES = 32
SCHEDULES = ("cosine", "plateau", "exponential", "constant")


@dataclass(frozen=True)
class DecoderConfig:
    decoder: str = "upsample"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int = 6
    noise_mean: float = 0.0  # optional Gaussian feature noise (the reconstruction seed's option)
    noise_std: float = 0.0
    noise_at_test: bool = False
    adversarial_weight: float = 0.0  # > 0: GAN-prior decoder (CEM's GAN-based inversion): MSE + w * adversarial
    seed: int = 0
    decoder_kwargs: dict = field(default_factory=dict)  # e.g. {"depth": "deep"}, {"stem": False, "output": "tanh"}
    betas: tuple[float, float] = (0.9, 0.999)  # Adam
    amsgrad: bool = False
    schedule: str = "cosine"  # cosine (per step, to lr * min_lr_ratio) | plateau | exponential (per epoch) | constant
    lr_gamma: float = 0.5  # plateau: factor on a stalled validation loss; exponential: factor per epoch
    min_lr_ratio: float = 0.01

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise AttackError("decoder training needs epochs >= 1, batch_size >= 1 and lr > 0")
        if not 0 < self.val_fraction < 0.5 or self.noise_std < 0 or self.adversarial_weight < 0:
            raise AttackError("val_fraction must be in (0, 0.5), noise_std >= 0 and adversarial_weight >= 0")
        if self.schedule not in SCHEDULES:
            raise AttackError(f"unknown schedule {self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        if not 0 < self.lr_gamma <= 1 or not 0 <= self.min_lr_ratio <= 1:
            raise AttackError("lr_gamma must be in (0, 1] and min_lr_ratio in [0, 1]")

    def to_dict(self) -> dict:
        return asdict(self)


class FeatureNorm(nn.Module):
    """Per-channel standardisation with statistics of the attacker's training features (GPZ's normaliser)."""

    def __init__(self, features: torch.Tensor) -> None:
        super().__init__()
        dims = [0, *range(2, features.dim())]
        self.register_buffer("mean", features.mean(dim=dims, keepdim=True)[0:1])
        self.register_buffer("std", features.std(dim=dims, keepdim=True)[0:1].clamp_min(1e-6))

    def forward(self, z):
        return (z - self.mean) / self.std


class Discriminator(nn.Module):
    """A small patch discriminator (real image vs reconstruction) for the GAN-prior decoder."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, 1, 3, 1, 1),
        )

    def forward(self, x):
        return self.net(x).flatten(1).mean(1)


class Inverter(nn.Module):
    """FeatureNorm followed by a registered decoder."""

    def __init__(self, norm: FeatureNorm, decoder: nn.Module) -> None:
        super().__init__()
        self.norm, self.decoder = norm, decoder

    def forward(self, z):
        return self.decoder(self.norm(z))


@dataclass
class TrainedDecoder:
    model: Inverter
    config: DecoderConfig
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    images_per_second: float = 0.0
    params: int = 0

    def summary(self) -> dict:
        return {"config": self.config.to_dict(), "best_epoch": self.best_epoch, "epochs_run": len(self.history),
                "seconds": self.seconds, "images_per_second": self.images_per_second, "params": self.params,
                "final_val_mse": self.history[self.best_epoch - 1]["val_mse"] if self.history else None}


def _noisy(z: torch.Tensor, config: DecoderConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    if config.noise_std == 0 and config.noise_mean == 0:
        return z
    noise = torch.randn(z.shape, generator=generator) * config.noise_std + config.noise_mean
    return z + noise


def train_decoder(features: np.ndarray, images: np.ndarray, config: DecoderConfig | None = None,
                  progress: Progress | None = None) -> TrainedDecoder:
    """Train an inverter on float features (already dequantized) paired row by row with images in [0, 1]."""
    config = config or DecoderConfig()
    if len(features) != len(images):
        raise AttackError(f"{len(features)} feature rows but {len(images)} images: pair them by sample id first")
    if len(features) < MIN_SAMPLES:
        raise AttackError(f"only {len(features)} attacker samples: a decoder needs at least {MIN_SAMPLES} "
                          f"(emit more of the attack split, drop --limit)")
    if not np.isfinite(features).all():
        raise AttackError("the features contain NaN or Inf: re-emit them from a verified bundle")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    z, x = torch.from_numpy(np.ascontiguousarray(features, np.float32)), torch.from_numpy(images.astype(np.float32))
    order = torch.randperm(len(z), generator=gen)
    n_val = max(1, int(len(z) * config.val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    model = Inverter(FeatureNorm(z[train_idx]), create_decoder(config.decoder, tuple(z.shape[1:]), tuple(x.shape[1:]),
                                                               **config.decoder_kwargs))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                           betas=tuple(config.betas), amsgrad=config.amsgrad)
    step_sched, epoch_sched = _schedules(opt, config, config.epochs * math.ceil(len(train_idx) / config.batch_size))
    result = TrainedDecoder(model, config, params=sum(p.numel() for p in model.parameters()))
    gan = config.adversarial_weight > 0
    if gan:
        disc = Discriminator(x.shape[1])
        disc_opt = torch.optim.Adam(disc.parameters(), lr=config.lr, betas=(0.5, 0.999))
    best, best_state, stale, seen, start = float("inf"), None, 0, 0, time.perf_counter()
    progress = resolve(progress)
    for epoch in range(config.epochs):
        model.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
        with progress.task(f"decoder epoch {epoch + 1}/{config.epochs}", total=len(perm)) as task:
            for i in range(0, len(perm), config.batch_size):
                idx = perm[i: i + config.batch_size]
                if len(idx) < 2:
                    continue  # BatchNorm needs two samples
                recon = model(_noisy(z[idx], config, gen))
                loss = F.mse_loss(recon, x[idx])
                if gan:  # the decoder also tries to make reconstructions the discriminator calls real
                    real, fake = disc(x[idx]), disc(recon.detach())
                    d_loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                              + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
                    disc_opt.zero_grad(set_to_none=True)
                    d_loss.backward()
                    disc_opt.step()
                    judged = disc(recon)
                    loss = loss + config.adversarial_weight * F.binary_cross_entropy_with_logits(
                        judged, torch.ones_like(judged))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if step_sched is not None:
                    step_sched.step()
                seen += len(idx)
                task.update(len(idx), loss=loss.item())
        val = evaluate_mse(model, z[val_idx], x[val_idx])
        result.history.append({"epoch": epoch + 1, "train_mse": loss.item(), "val_mse": val,
                               "lr": opt.param_groups[0]["lr"]})
        if isinstance(epoch_sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            epoch_sched.step(val)
        elif epoch_sched is not None:
            epoch_sched.step()
        if val < best - 1e-6:
            best, best_state, stale, result.best_epoch = val, copy.deepcopy(model.state_dict()), 0, epoch + 1
        else:
            stale += 1
            if stale >= config.patience:
                break
    result.seconds = time.perf_counter() - start
    result.images_per_second = seen / result.seconds if result.seconds > 0 else 0.0
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


def _schedules(opt, config: DecoderConfig, steps: int):
    """(per-step scheduler, per-epoch scheduler) for the config's schedule; either may be None."""
    sched = torch.optim.lr_scheduler
    if config.schedule == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=max(1, steps), eta_min=config.lr * config.min_lr_ratio), None
    if config.schedule == "plateau":  # GPZ: ReduceLROnPlateau x0.5
        return None, sched.ReduceLROnPlateau(opt, factor=config.lr_gamma, patience=2,
                                             min_lr=config.lr * config.min_lr_ratio)
    if config.schedule == "exponential":  # the reconstruction seed's gamma
        return None, sched.ExponentialLR(opt, gamma=config.lr_gamma)
    return None, None


@torch.no_grad()
def reconstruct(model: nn.Module, features: np.ndarray, config: DecoderConfig | None = None,
                batch: int = 256) -> torch.Tensor:
    """Reconstructions in [0, 1] for float features (test-time noise added when the config asks for it)."""
    model.eval()
    z = torch.from_numpy(np.ascontiguousarray(features, np.float32))
    if config is not None and config.noise_at_test:
        z = _noisy(z, config, torch.Generator().manual_seed(config.seed + 1))
    return torch.cat([model(z[i: i + batch]) for i in range(0, len(z), batch)])


@torch.no_grad()
def evaluate_mse(model: nn.Module, z: torch.Tensor, x: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    total = sum(F.mse_loss(model(z[i: i + batch]), x[i: i + batch], reduction="sum").item()
                for i in range(0, len(z), batch))
    return total / x.numel()
