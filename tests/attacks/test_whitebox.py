"""The white-box inversion's total-variation prior prefers smooth images."""

import torch


def test_total_variation_prefers_smooth_images():
    from edgesplit.attacks.whitebox import total_variation

    smooth = torch.linspace(0, 1, 16).repeat(1, 1, 16, 1)
    noisy = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert total_variation(smooth).item() < total_variation(noisy).item()
    assert total_variation(torch.zeros(2, 3, 8, 8)).eq(0).all()
