"""Pixel conversions shared by every loader: channel count, square resize and the matching statistics.

One implementation keeps `ds[i]` and `ds.tensors()` identical and the recorded mean/std consistent.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)


def convert(batch: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """Float N×C×H×W in [0, 1] → N×channels×size×size in [0, 1] (bilinear; antialiased when shrinking).

    A 1-channel batch asked for 3 repeats its channel; a 3-channel batch asked for 1 becomes luminance.
    """
    if batch.shape[1] == 3 and channels == 1:
        weights = torch.tensor(LUMA, dtype=batch.dtype).view(1, 3, 1, 1)
        batch = (batch * weights).sum(dim=1, keepdim=True)
    height, width = batch.shape[-2:]
    if (height, width) != (size, size):
        shrinking = size < height or size < width
        batch = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=shrinking)
    if batch.shape[1] == 1 and channels == 3:
        batch = batch.expand(-1, 3, -1, -1)
    return batch.clamp(0.0, 1.0).contiguous()


def convert_stats(mean: tuple[float, ...], std: tuple[float, ...], channels: int
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The native per-channel mean/std expressed for `channels` output channels.

    Repeating a channel repeats its statistics; luminance uses the luma weights on mean and std alike.
    """
    if len(mean) == channels:
        return tuple(mean), tuple(std)
    if channels == 3:
        return (mean[0],) * 3, (std[0],) * 3
    luma_mean = sum(w * m for w, m in zip(LUMA, mean, strict=True))
    # Exact for perfectly correlated channels; an upper bound otherwise (RGB channels are highly correlated).
    luma_std = sum(w * s for w, s in zip(LUMA, std, strict=True))
    return (round(luma_mean, 4),), (round(luma_std, 4),)
