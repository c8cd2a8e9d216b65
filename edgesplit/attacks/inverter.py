"""The pieces a decoder is trained with: the feature normaliser, the inverter it feeds, the GAN prior's
discriminator, and the learning-rate schedules by name."""

from __future__ import annotations

import torch
from torch import nn

PLATEAU_PATIENCE = 2  # schedule="plateau": stalled epochs before the learning rate is cut


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


def schedules(opt, config, steps: int, steps_per_epoch: int):
    """(per-step scheduler, per-epoch scheduler) for the config's schedule; either may be None."""
    sched = torch.optim.lr_scheduler
    if config.schedule == "restarts":  # SGDR: cosine to lr * min_lr_ratio each cycle, then back to lr
        return sched.CosineAnnealingWarmRestarts(opt, T_0=config.cycle_epochs * steps_per_epoch,
                                                 eta_min=config.lr * config.min_lr_ratio), None
    if config.schedule == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=max(1, steps), eta_min=config.lr * config.min_lr_ratio), None
    if config.schedule == "plateau":  # GPZ: ReduceLROnPlateau x0.5
        return None, sched.ReduceLROnPlateau(opt, factor=config.lr_gamma, patience=PLATEAU_PATIENCE,
                                             min_lr=config.lr * config.min_lr_ratio)
    if config.schedule == "exponential":  # the reconstruction seed's gamma
        return None, sched.ExponentialLR(opt, gamma=config.lr_gamma)
    return None, None
