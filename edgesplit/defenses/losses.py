"""Training objectives of the defenses that shape the head's weights: CEM, adversarial reconstruction
(with its surrogate decoder), PATROL's block-wise local Lipschitz term and the mask sparsity penalty."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conditional_entropy(z: torch.Tensor, y: torch.Tensor, noise_std: float, var_threshold: float,
                        log_entropy: bool = True) -> torch.Tensor:
    """A Gaussian estimate of H(z | y) per feature dimension, averaged over the classes in the batch.

    CEM raises a lower bound on the attacker's reconstruction error by maximising the conditional entropy
    of the (noisy) features given the class: per class, the within-class variance of each feature plus the
    noise variance, capped at `var_threshold` (CEM's 0.125: beyond it the bound saturates). With
    `log_entropy`, the Gaussian entropy 0.5 log(2 pi e var); without, the capped variance itself.
    """
    flat = z.flatten(1)
    terms = []
    for c in torch.unique(y):
        group = flat[y == c]
        if len(group) < 2:
            continue
        var = group.var(0, unbiased=True) + noise_std ** 2
        var = torch.clamp(var, max=var_threshold)
        terms.append((0.5 * torch.log(2 * math.pi * math.e * var)).mean() if log_entropy else var.mean())
    return torch.stack(terms).mean() if terms else flat.sum() * 0


class SurrogateDecoder(nn.Module):
    """The defender's stand-in attacker for adversarial training: transposed convs to the image size."""

    def __init__(self, feature_shape: tuple[int, ...], image_shape: tuple[int, int, int], width: int = 64):
        super().__init__()
        c, side = image_shape[0], image_shape[1]
        self.vector = len(feature_shape) == 1
        if self.vector:
            self.project = nn.Linear(feature_shape[0], width * 16)
            start = 4
        else:
            self.project = nn.Conv2d(feature_shape[0], width, 3, 1, 1)
            start = feature_shape[-1]
        layers: list[nn.Module] = [nn.BatchNorm2d(width), nn.ReLU()]
        while start < side:
            layers += [nn.ConvTranspose2d(width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU()]
            start *= 2
        layers += [nn.Conv2d(width, c, 3, 1, 1)]
        self.body = nn.Sequential(*layers)
        self.side, self.width = side, width

    def forward(self, z):
        x = self.project(z.flatten(1)).view(len(z), self.width, 4, 4) if self.vector else self.project(z)
        x = self.body(x)
        if x.shape[-1] != self.side:
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        return torch.sigmoid(x)


def lipschitz_ratios(clean: list[torch.Tensor], noisy: list[torch.Tensor], delta: torch.Tensor) -> torch.Tensor:
    """PATROL's block-wise local Lipschitz constants k_i, averaged over the batch.

    `clean[i]` / `noisy[i]` are block i's outputs for x and x + delta; k_1 = |f1(x+d) - f1(x)| / |d|, and
    k_i = |h_i(x+d) - h_i(x)| / |h_{i-1}(x+d) - h_{i-1}(x)| for the later blocks.
    """
    ks = []
    before = delta.flatten(1).norm(dim=1)
    for c, n in zip(clean, noisy, strict=True):
        after = (n - c).flatten(1).norm(dim=1)
        ks.append((after / before.clamp_min(1e-8)).mean())
        before = after
    return torch.stack(ks)
