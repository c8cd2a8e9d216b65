"""Would a person be recognised? The SSIM matrix, re-identification rates and the evaluation classifier,
checked on the digits against their ceilings and floors."""

import pytest
import torch
from skimage.metrics import structural_similarity

from edgesplit.attacks.metrics import ssim
from edgesplit.attacks.recognisability import (
    Eigenspace,
    recognition,
    reid_context,
    reid_rates,
    ssim_matrix,
    train_evaluator,
)
from edgesplit.data import load_dataset


@pytest.fixture(scope="module")
def digits_test():
    images, labels = load_dataset("digits", split="test", limit=64).tensors()
    attacker, attacker_labels = load_dataset("digits", split="attack").tensors()
    return images.double(), labels.numpy(), attacker.numpy(), attacker_labels.numpy()


def test_ssim_matrix_matches_pairwise_ssim_and_scikit_image(digits_test):
    images = digits_test[0][:6]
    queries = (images + 0.05 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    m = ssim_matrix(queries, images)
    for i in range(6):
        for j in range(6):
            assert m[i, j].item() == pytest.approx(ssim(queries[i:i + 1], images[j:j + 1], 1.0).item(), abs=1e-4)
    sk = structural_similarity(queries[2, 0].numpy(), images[4, 0].numpy(), data_range=1.0, gaussian_weights=True,
                               sigma=1.5, use_sample_covariance=False)
    assert m[2, 4].item() == pytest.approx(sk, abs=2e-3)  # skimage averages over a slightly larger region


def test_identity_decoder_reidentifies_everyone_and_a_constant_one_only_chance(digits_test):
    images, _, attacker, _ = digits_test
    encoder = Eigenspace(attacker)
    n = len(images)
    assert reid_rates(images, images, encoder)["top1"] == 1.0
    everyone = reid_rates(images, images, encoder)
    assert everyone["ssim"] == {"top1": 1.0, "top5": 1.0} and everyone["encoder"]["top5"] == 1.0
    constant = torch.full((1, *images.shape[1:]), 0.3, dtype=torch.float64)
    at_chance = reid_rates(constant.expand_as(images), images, encoder)
    assert at_chance["ssim"]["top1"] == pytest.approx(1 / n) and at_chance["ssim"]["top5"] == pytest.approx(5 / n)
    context = reid_context(images, encoder, constant)
    assert context["chance"] == {"top1": 1 / n, "top5": 5 / n}
    assert context["floor"]["top1"] == pytest.approx(1 / n) and 1 <= encoder.components < len(attacker)


def test_evaluation_classifier_recognises_originals_and_not_the_floor(digits_test):
    images, labels, attacker, attacker_labels = digits_test
    evaluator, info = train_evaluator(attacker, attacker_labels, 10, epochs=8)
    floor = torch.from_numpy(attacker.mean(0, keepdims=True)).double()
    rates = recognition(images, images, labels, evaluator, floor, info)
    assert rates["originals"] == rates["reconstruction"] >= 0.8, "an identity reconstruction is recognised"
    assert rates["floor"] <= rates["chance"] + 1e-9, "one image for everyone gets one class right at most"
    assert "not a target architecture" in info["architecture"]
