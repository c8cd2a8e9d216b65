"""The modules defenses insert at the cut. Head-side modules run on the device and are exported with the
head (their randomness included: ONNX RandomNormalLike / RandomUniformLike); tail-side modules restore
what the tail expects on the server."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GaussianNoise(nn.Module):
    """z + N(mean, std^2), in training and (by default) at inference: the shipped head adds it too."""

    def __init__(self, std: float, mean: float = 0.0, at_inference: bool = True) -> None:
        super().__init__()
        self.std, self.mean, self.at_inference = float(std), float(mean), bool(at_inference)
        self.off = nn.Identity()  # a graph node even when inactive, so the defended cut can be named

    def forward(self, z):
        if self.training or self.at_inference:
            return z + torch.randn_like(z) * self.std + self.mean
        return self.off(z)


class FeatureDropout(nn.Module):
    """Inverted dropout on the features with its own uniform draw (exports as RandomUniformLike, unlike
    nn.Dropout, which ONNX drops in eval mode)."""

    def __init__(self, p: float, at_inference: bool = True) -> None:
        super().__init__()
        self.p, self.at_inference = float(p), bool(at_inference)
        self.off = nn.Identity()

    def forward(self, z):
        if self.p == 0 or not (self.training or self.at_inference):
            return self.off(z)
        keep = (torch.rand_like(z) >= self.p).to(z.dtype)
        return z * keep / (1 - self.p)


class TopKChannels(nn.Module):
    """Per sample, keep the `k` channels with the largest mean square activation; zero the others."""

    def __init__(self, k: int, spatial: bool = True) -> None:
        super().__init__()
        self.k, self.spatial = int(k), spatial

    def forward(self, z):
        energy = z.pow(2).flatten(2).mean(2) if self.spatial else z.pow(2)  # N x C
        kth = torch.topk(energy, self.k, dim=1).values[:, -1:]  # N x 1
        mask = (energy >= kth).to(z.dtype)
        return z * (mask[:, :, None, None] if self.spatial else mask)


class ChannelSelect(nn.Module):
    """Send only channels `keep` (a fixed subset): the payload shrinks to len(keep) / C."""

    def __init__(self, keep: list[int]) -> None:
        super().__init__()
        self.register_buffer("keep", torch.tensor(list(keep), dtype=torch.long), persistent=False)

    def forward(self, z):
        return z.index_select(1, self.keep)


class ChannelScatter(nn.Module):
    """Server side of ChannelSelect: put the received channels back in place, zeros elsewhere."""

    def __init__(self, keep: list[int], channels: int, spatial: bool = True) -> None:
        super().__init__()
        keep = list(keep)
        self.spatial = spatial
        dropped = [c for c in range(channels) if c not in set(keep)]
        order = keep + dropped  # position of every original channel in cat([received, zeros])
        self.register_buffer("inverse", torch.tensor([order.index(c) for c in range(channels)]), persistent=False)
        self.missing = len(dropped)

    def forward(self, z):
        padded = F.pad(z, (0, 0, 0, 0, 0, self.missing) if self.spatial else (0, self.missing))  # zeros after
        return padded.index_select(1, self.inverse)


class SoftChannelMask(nn.Module):
    """PATROL's trainable soft mask: z * m per channel; an L1 penalty on m drives channels to zero."""

    def __init__(self, channels: int, spatial: bool = True) -> None:
        super().__init__()
        self.mask = nn.Parameter(torch.ones(channels))
        self.spatial = spatial

    def forward(self, z):
        return z * (self.mask[None, :, None, None] if self.spatial else self.mask[None, :])


class ChannelScale(nn.Module):
    """The kept channels' learned mask values, after pruning (a fixed per-channel scale)."""

    def __init__(self, channels: int, spatial: bool = True) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels), requires_grad=False)
        self.spatial = spatial

    def forward(self, z):
        return z * (self.scale[None, :, None, None] if self.spatial else self.scale[None, :])


class FeatureStandardize(nn.Module):
    """Golden Partition Zone's feature normaliser: per sample and channel, zero mean and unit variance over
    the spatial positions, so the wire carries no per-channel scale the attacker could exploit."""

    def __init__(self, eps: float = 1e-5, spatial: bool = True) -> None:
        super().__init__()
        self.eps, self.dims = float(eps), (2, 3) if spatial else (1,)  # vectors: over the feature itself

    def forward(self, z):
        dims = self.dims
        mean = z.mean(dims, keepdim=True)
        var = (z - mean).pow(2).mean(dims, keepdim=True)
        return (z - mean) / torch.sqrt(var + self.eps)


def _dft(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    k = torch.arange(n, dtype=torch.float64)
    angle = -2 * math.pi * torch.outer(k, k) / n
    return torch.cos(angle).float(), torch.sin(angle).float()


class SpectralWhitening(nn.Module):
    """Golden Partition Zone's FFT-based entropy enhancer: flatten each feature map's 2-D spectrum,
    X / |X|^alpha (alpha 0: unchanged, 1: phase only), which spreads energy over all frequencies and raises
    the features' entropy. Written with DFT matrices (MatMul), so it exports to ONNX and quantizes."""

    def __init__(self, height: int, width: int, alpha: float = 0.5, eps: float = 1e-3) -> None:
        super().__init__()
        self.alpha, self.eps = float(alpha), float(eps)
        for name, n in (("h", height), ("w", width)):
            re, im = _dft(n)
            self.register_buffer(f"{name}_re", re, persistent=False)
            self.register_buffer(f"{name}_im", im, persistent=False)

    def forward(self, z):
        hr, hi, wr, wi = self.h_re, self.h_im, self.w_re, self.w_im
        # X = F_h z F_w (z real)
        ar, ai = hr @ z, hi @ z
        xr, xi = ar @ wr - ai @ wi, ar @ wi + ai @ wr
        gain = (xr * xr + xi * xi + self.eps).pow(-self.alpha / 2)
        xr, xi = xr * gain, xi * gain
        # z' = Re(conj(F_h) X conj(F_w)) / (H W)
        br, bi = hr @ xr + hi @ xi, hr @ xi - hi @ xr
        out = br @ wr + bi @ wi
        return out / (z.shape[-1] * z.shape[-2])
