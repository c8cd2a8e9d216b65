"""The defenses' loss terms on known inputs: the CEM information bound and Lipschitz ratios."""

import pytest
import torch

from edgesplit.defenses.losses import information_bound, lipschitz_ratios


def test_cem_bound_grows_with_within_class_spread_is_flat_below_the_threshold_and_has_a_gradient():
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    tight = torch.randn(6, 5, generator=torch.Generator().manual_seed(0)) * 0.01
    loose = (tight * 100).requires_grad_()
    assert information_bound(loose, y, 0.1, 0.0) > information_bound(tight, y, 0.1, 0.0) > 0
    information_bound(loose, y, 0.1, 0.125).backward()
    assert loose.grad.abs().sum() > 0, "training can reduce it"
    assert float(information_bound(tight, y, 0.1, 0.125)) == 0.0, "spread below the threshold is not penalised"
    v = loose.detach()[:3].var(0, unbiased=True).mean()
    assert float(information_bound(loose.detach()[:3], y[:3], 1.0, 0.0, log_entropy=False)) == pytest.approx(
        float(v), rel=1e-5)


def test_lipschitz_ratios_of_known_maps():
    x, delta = torch.rand(3, 4), torch.rand(3, 4) * 0.1
    clean = [2 * x, 6 * x]
    noisy = [2 * (x + delta), 6 * (x + delta)]
    assert torch.allclose(lipschitz_ratios(clean, noisy, delta), torch.tensor([2.0, 3.0]))
