"""The attacker is trained to convergence, the audit reports the worst case over decoder families, a learning
curve, and whether a person would be recognised (re-identification and recognition rates)."""

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from edgesplit.attacks import DecoderConfig, train_decoder
from edgesplit.attacks.decoders import resolve_families
from edgesplit.attacks.metrics import ssim
from edgesplit.attacks.recognisability import (
    Eigenspace,
    recognition,
    reid_context,
    reid_rates,
    ssim_matrix,
    train_evaluator,
)
from edgesplit.attacks.training import MIN_CYCLE_GAIN
from edgesplit.data import load_dataset
from edgesplit.errors import AttackError


def _toy(n=96, seed=0, noise=0.0):
    """Images that are a fixed function of the features (plus, with `noise`, what no decoder can predict)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 16, 4, 4)).astype(np.float32)
    x = 1 / (1 + np.exp(-np.repeat(np.repeat(z[:, :1], 4, axis=2), 4, axis=3)))
    x = np.clip(x + noise * rng.normal(size=x.shape), 0, 1)
    return z, x.astype(np.float32)


def test_training_restarts_cosine_cycles_until_one_no_longer_helps():
    z, x = _toy(noise=0.1)  # the validation loss floors at the noise: the cycles stop gaining
    result = train_decoder(z, x, DecoderConfig(epochs=300, cycle_epochs=4, lr=3e-3))
    s, h = result.summary(), result.history
    assert s["stopped_by"] == "patience" and s["converged"] and s["epochs_run"] < 300
    assert s["epochs_run"] % 4 == 0, "it stops at the end of a cycle"
    best_at = [min(r["val_mse"] for r in h[:e]) for e in range(4, len(h) + 1, 4)]
    assert best_at[-1] > best_at[-2] * (1 - MIN_CYCLE_GAIN), "the last cycle gained less than 0.5 dB"
    assert all(b < a * (1 - MIN_CYCLE_GAIN) for a, b in zip(best_at[:-2], best_at[1:-1], strict=True))
    assert s["final_val_mse"] == min(r["val_mse"] for r in h) == best_at[-1]
    assert h[0]["lr"] < 3e-3 and max(r["lr"] for r in h[3::4]) > 2.9e-3, "cosine within a cycle, then restarted"
    assert s["final_train_mse"] == h[-1]["train_mse"] and s["train_samples"] == 87
    ceiling = train_decoder(z, x, DecoderConfig(epochs=2))
    assert ceiling.summary()["stopped_by"] == "epochs" and not ceiling.converged


def test_plateau_schedule_stops_after_patience_epochs_without_improvement():
    z, x = _toy(noise=0.1)
    result = train_decoder(z, x, DecoderConfig(epochs=300, patience=6, lr=3e-3, schedule="plateau"))
    s = result.summary()
    assert s["stopped_by"] == "patience" and s["epochs_run"] == s["best_epoch"] + 6
    assert result.history[-1]["lr"] < 3e-3, "the plateau schedule cut the learning rate on the way"


def test_automatic_batch_size_gives_about_forty_steps_an_epoch():
    config = DecoderConfig()
    assert config.batch_for(324) == 8 and config.batch_for(1600) == 40 and config.batch_for(100_000) == 64
    assert config.batch_for(40) == 8 and DecoderConfig(batch_size=32).batch_for(324) == 32
    with pytest.raises(AttackError, match="batch_size >= 0"):
        DecoderConfig(batch_size=-1)
    with pytest.raises(AttackError, match="budget_s must be >= 0"):
        DecoderConfig(budget_s=-1)


def test_time_budget_stops_training_and_says_so():
    z, x = _toy()
    result = train_decoder(z, x, DecoderConfig(epochs=300, patience=300, budget_s=1e-6))
    assert result.stopped_by == "budget" and len(result.history) == 1 and not result.converged


def test_warm_start_begins_from_the_given_decoder_and_fraction_uses_fewer_rows():
    z, x = _toy()
    config = DecoderConfig(epochs=8, patience=8)
    first = train_decoder(z, x, config)
    warm = train_decoder(z + 0.01, x, DecoderConfig(epochs=1, patience=8), init=first)
    cold = train_decoder(z + 0.01, x, DecoderConfig(epochs=1, patience=8))
    assert warm.warm_start == "deconv" and cold.warm_start is None
    assert warm.history[0]["val_mse"] < cold.history[0]["val_mse"], "a trained start is far ahead after one epoch"
    with pytest.raises(AttackError, match="cannot start from that decoder"):
        train_decoder(z, x, DecoderConfig(decoder="nonoverlap", epochs=1), init=first)
    quarter = train_decoder(z, x, DecoderConfig(epochs=1), fraction=0.25)
    assert quarter.samples == round(87 * 0.25)
    with pytest.raises(AttackError, match="fraction must be in"):
        train_decoder(z, x, config, fraction=0)


def test_small_attacker_sets_are_refit_on_every_sample_for_the_chosen_epochs():
    z, x = _toy(n=48)  # a validation slice of 4: too few to pick a checkpoint, and 10 % of the attacker's data
    small = train_decoder(z, x, DecoderConfig(epochs=6, patience=6, schedule="cosine"))
    s = small.summary()
    assert s["refit_samples"] == 48 and s["train_samples"] == 44 and s["best_epoch"] >= 1
    norm = small.model.norm.mean.flatten()
    assert torch.allclose(norm, torch.from_numpy(z).mean(dim=(0, 2, 3)), atol=1e-5), "statistics of all 48 rows"
    large = train_decoder(*_toy(n=200), DecoderConfig(epochs=2))
    assert large.summary()["refit_samples"] == 0, "a validation slice of 20 picks the checkpoint itself"
    budget = train_decoder(z, x, DecoderConfig(epochs=300, budget_s=1e-6))
    assert budget.refit_samples == 0, "a spent budget is not doubled by a refit"
    roomy = train_decoder(z, x, DecoderConfig(epochs=3, patience=6, schedule="cosine", budget_s=600))
    assert roomy.refit_samples == 48, "a refit that fits in the budget still runs"


def test_decoder_families():
    assert resolve_families("auto") == ("deconv", "nonoverlap")
    assert resolve_families(["deconv", "auto"]) == ("deconv", "nonoverlap")
    assert len(resolve_families("all")) == 5
    with pytest.raises(AttackError, match="unknown decoder 'deconf'.*closest: deconv"):
        resolve_families("deconf")


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
