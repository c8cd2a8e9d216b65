"""Reconstruction metrics on images in [0, 1], per image, with the data range always explicit.

Conventions (see the seeds' mistakes in the project notes): PSNR is computed per image and then
averaged, never from a batch-mean MSE; SSIM uses an 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03,
population covariances and the valid region only, as scikit-image with gaussian_weights=True does;
MS-SSIM uses the five scales of Wang et al. (2003) when images are large enough and fewer (renormalised
weights, recorded) when they are not.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW, SIGMA = 11, 1.5


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"metrics need two N x C x H x W batches of one shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error over all pixels and channels."""
    _check(x, y)
    return ((x.double() - y.double()) ** 2).flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """Per-image PSNR in dB (inf for identical images)."""
    return 10 * torch.log10(torch.as_tensor(data_range, dtype=torch.float64) ** 2 / mse(x, y))


def cosine(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image cosine similarity of the flattened images."""
    _check(x, y)
    return F.cosine_similarity(x.double().flatten(1), y.double().flatten(1), dim=1, eps=1e-12)


def _gaussian(window: int, sigma: float) -> torch.Tensor:
    r = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _filter(img: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    c = img.shape[1]
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    return F.conv2d(F.conv2d(img, kx, groups=c), ky, groups=c)  # valid region only


def _ssim_parts(x, y, data_range, window):
    g = _gaussian(window, SIGMA)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _filter(x, g), _filter(y, g)
    sxx = _filter(x * x, g) - mx * mx
    syy = _filter(y * y, g) - my * my
    sxy = _filter(x * y, g) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def window_for(height: int, width: int) -> int:
    """11, or the largest odd window that fits a smaller image (recorded in results)."""
    side = min(height, width)
    return WINDOW if side >= WINDOW else max(1, side - (1 - side % 2))


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """Per-image SSIM (mean over channels), 11x11 Gaussian window, sigma 1.5."""
    _check(x, y)
    return _ssim_parts(x.double(), y.double(), data_range, window_for(*x.shape[-2:]))[0]


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales fit: the coarsest scale must still hold an 11x11 window."""
    side, scales = min(height, width), 1
    while scales < len(MS_SSIM_WEIGHTS) and side // (2 ** scales) >= WINDOW:
        scales += 1
    return scales


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float) -> tuple[torch.Tensor, int]:
    """Per-image MS-SSIM and the number of scales used (5 for images of 176 px or more)."""
    _check(x, y)
    x, y = x.double(), y.double()
    scales = ms_ssim_scales(*x.shape[-2:])
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float64)
    weights = weights / weights.sum()
    window = window_for(*x.shape[-2:])
    values = []
    for level in range(scales):
        s, cs = _ssim_parts(x, y, data_range, window)
        values.append(s if level == scales - 1 else cs)
        if level < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack([v.clamp_min(0) for v in values], dim=1)  # negative cs would make a complex power
    return torch.prod(stacked ** weights, dim=1), scales


def all_metrics(reconstruction: torch.Tensor, original: torch.Tensor, data_range: float = 1.0) -> dict:
    """Per-image values of every metric (numpy arrays) plus the MS-SSIM scale count and SSIM window."""
    msv, scales = ms_ssim(reconstruction, original, data_range)
    return {"mse": mse(reconstruction, original).numpy(), "psnr": psnr(reconstruction, original, data_range).numpy(),
            "ssim": ssim(reconstruction, original, data_range).numpy(), "ms_ssim": msv.numpy(),
            "cosine": cosine(reconstruction, original).numpy(), "ms_ssim_scales": scales,
            "ssim_window": window_for(*original.shape[-2:]), "data_range": data_range}


def summarise(values: np.ndarray, higher_is_better: bool = True, seed: int = 0) -> dict:
    """Mean, worst case (from the defender's view: the best attack image), spread, and a bootstrap 95 % CI."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    rng = np.random.default_rng(seed)
    boots = [rng.choice(finite, size=len(finite)).mean() for _ in range(1000)] if len(finite) > 1 else [finite.mean()]
    return {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)),
            "worst_case": float(v.max() if higher_is_better else v.min()),
            "range95": [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))],
            "ci95_mean": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
            "n": int(len(v)), "infinite": int((~np.isfinite(v)).sum())}


def summarise_all(per_image: dict) -> dict:
    """Summaries of `all_metrics` output; "worst case" is the most leaking image (highest PSNR/SSIM, lowest MSE)."""
    higher = {"psnr": True, "ssim": True, "ms_ssim": True, "cosine": True, "mse": False}
    return {name: summarise(per_image[name], higher_is_better=higher[name]) for name in higher}


__all__ = ["MS_SSIM_WEIGHTS", "all_metrics", "cosine", "ms_ssim", "ms_ssim_scales", "mse", "psnr", "ssim",
           "summarise", "summarise_all", "window_for"]
