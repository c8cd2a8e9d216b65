"""Metrics agree with scikit-image (MSE, PSNR, SSIM) and with an independent MS-SSIM reference within 1e-4."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from edgesplit.attacks.metrics import (
    all_metrics,
    cosine,
    ms_ssim,
    ms_ssim_scales,
    mse,
    psnr,
    ssim,
    summarise,
    summarise_all,
)


def _pair(shape, seed=0, noise=0.08):
    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.random(shape), sigma=(0, 0, 2, 2))  # smooth, image-like
    x = (x - x.min()) / (x.max() - x.min())
    y = np.clip(x + rng.normal(0, noise, shape), 0, 1)
    return x, y


@pytest.mark.parametrize("shape", [(4, 1, 32, 32), (3, 3, 48, 48), (2, 3, 64, 40)])
def test_mse_psnr_ssim_agree_with_scikit_image(shape):
    x, y = _pair(shape)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for i in range(shape[0]):
        assert mse(ty, tx)[i].item() == pytest.approx(mean_squared_error(x[i], y[i]), abs=1e-10)
        assert psnr(ty, tx, 1.0)[i].item() == pytest.approx(peak_signal_noise_ratio(x[i], y[i], data_range=1.0),
                                                             abs=1e-4)
        ref = structural_similarity(x[i], y[i], data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, channel_axis=0)
        assert abs(ssim(ty, tx, 1.0)[i].item() - ref) < 1e-4


def test_psnr_is_per_image_then_averaged_not_from_batch_mse():
    x = torch.zeros(2, 1, 16, 16)
    y = x.clone()
    y[0] += 0.1  # mse 0.01 -> 20 dB
    y[1] += 0.001  # mse 1e-6 -> 60 dB
    per_image = psnr(y, x, 1.0)
    assert per_image.mean().item() == pytest.approx(40.0, abs=1e-6)
    batch_mse_psnr = 10 * np.log10(1 / mse(y, x).mean().item())
    assert abs(batch_mse_psnr - 40.0) > 10, "the seeds' batch-mean convention would give ~23 dB"


def _reference_ms_ssim(x, y, scales):
    """Independent MS-SSIM (Wang et al. 2003) with scipy's Gaussian filter, valid region, renormalised weights."""
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333][:scales])
    weights = weights / weights.sum()
    c1, c2, r = 0.01 ** 2, 0.03 ** 2, 5
    values = []
    for level in range(scales):
        def f(img):
            return gaussian_filter(img, sigma=(0, 1.5, 1.5), truncate=3.5, mode="reflect")[:, r:-r, r:-r]
        mx, my = f(x), f(y)
        sxx, syy, sxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
        cs = (2 * sxy + c2) / (sxx + syy + c2)
        s = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1) * cs
        values.append(s.mean() if level == scales - 1 else cs.mean())
        if level < scales - 1:
            h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
            x = x[:, :h, :w].reshape(x.shape[0], h // 2, 2, w // 2, 2).mean((2, 4))
            y = y[:, :h, :w].reshape(y.shape[0], h // 2, 2, w // 2, 2).mean((2, 4))
    return float(np.prod(np.maximum(values, 0) ** weights))


@pytest.mark.parametrize("side, scales", [(176, 5), (64, 3), (32, 2), (16, 1)])
def test_ms_ssim_agrees_with_a_reference_and_uses_fewer_scales_for_small_images(side, scales):
    x, y = _pair((2, 3, side, side), seed=side)
    got, used = ms_ssim(torch.from_numpy(y), torch.from_numpy(x), 1.0)
    assert used == scales == ms_ssim_scales(side, side)
    for i in range(2):
        assert abs(got[i].item() - _reference_ms_ssim(y[i], x[i], scales)) < 1e-4


def test_ms_ssim_with_one_scale_is_ssim():
    x, y = _pair((2, 1, 16, 16))
    got, used = ms_ssim(torch.from_numpy(y), torch.from_numpy(x), 1.0)
    assert used == 1 and torch.allclose(got, ssim(torch.from_numpy(y), torch.from_numpy(x), 1.0), atol=1e-12)


def test_tiny_images_never_crash():
    x, y = _pair((2, 1, 8, 8))
    values = all_metrics(torch.from_numpy(y), torch.from_numpy(x))
    assert values["ssim_window"] == 7 and np.isfinite(values["ssim"]).all()


def test_cosine_and_identity():
    x, _ = _pair((3, 3, 16, 16))
    tx = torch.from_numpy(x)
    assert torch.allclose(cosine(tx, tx), torch.ones(3, dtype=torch.float64))
    assert torch.isinf(psnr(tx, tx, 1.0)).all()
    assert torch.allclose(ssim(tx, tx, 1.0), torch.ones(3, dtype=torch.float64))
    flat = x.reshape(3, -1)
    y = x[::-1].copy()
    ref = (flat * y.reshape(3, -1)).sum(1) / np.linalg.norm(flat, axis=1) / np.linalg.norm(y.reshape(3, -1), axis=1)
    assert np.allclose(cosine(torch.from_numpy(y), tx).numpy(), ref, atol=1e-12)


def test_summaries_report_the_most_leaking_image_as_worst_case():
    s = summarise(np.array([10.0, 20.0, 30.0]), higher_is_better=True)
    assert s["worst_case"] == 30.0 and s["mean"] == 20.0 and s["ci95_mean"][0] <= 20.0 <= s["ci95_mean"][1]
    assert summarise(np.array([0.1, 0.2]), higher_is_better=False)["worst_case"] == 0.1
    x, y = _pair((5, 1, 16, 16))
    summary = summarise_all(all_metrics(torch.from_numpy(y), torch.from_numpy(x)))
    assert set(summary) == {"psnr", "ssim", "ms_ssim", "mse", "cosine"}
