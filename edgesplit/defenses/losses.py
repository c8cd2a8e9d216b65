"""Training objectives of the defenses that shape the head's weights: CEM's information bound, adversarial reconstruction
(with its surrogate decoder), PATROL's block-wise local Lipschitz term and the mask sparsity penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def information_bound(z: torch.Tensor, y: torch.Tensor, noise_std: float, var_threshold: float,
                      log_entropy: bool = True) -> torch.Tensor:
    """CEM's objective in Gaussian form: a bound on what the noisy features z + N(0, sigma^2) tell about the
    input beyond its class, averaged over the classes in the batch and the feature dimensions.

    Within class c, feature d varies with variance v_cd across inputs; through Gaussian noise of variance
    sigma^2 it carries at most 0.5 log(1 + v_cd / sigma^2) nats about which input it was. Minimising that
    bound raises the lower bound on the attacker's conditional entropy H(x | z) that CEM maximises: the
    features of one class crowd together under the noise. Variance below `var_threshold` (CEM's 0.125, in
    units of the feature scale) is not penalised: the bound has already flattened there. Without
    `log_entropy`, the plain variance ratio v_cd / sigma^2 is penalised instead of its log.
    """
    flat = z.flatten(1)
    noise_var = max(noise_std, 1e-6) ** 2
    terms = []
    for c in torch.unique(y):
        group = flat[y == c]
        if len(group) < 2:
            continue
        excess = (group.var(0, unbiased=True) - var_threshold * noise_var).clamp_min(0)
        ratio = excess / noise_var
        terms.append((0.5 * torch.log1p(ratio)).mean() if log_entropy else ratio.mean())
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
