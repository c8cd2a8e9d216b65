"""Decoder training: it learns, is reproducible, trains to convergence (cosine restarts until a cycle no longer
helps, or a plateau), keeps to a time budget, warm-starts, and refits small attacker sets; bad input gets one
clear line."""

import numpy as np
import pytest
import torch

from edgesplit.attacks import DecoderConfig, train_decoder
from edgesplit.attacks.training import MIN_CYCLE_GAIN
from edgesplit.errors import AttackError


def _toy(n=96, seed=0, noise=0.0):
    """Images that are a fixed function of the features (plus, with `noise`, what no decoder can predict)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 16, 4, 4)).astype(np.float32)
    x = 1 / (1 + np.exp(-np.repeat(np.repeat(z[:, :1], 4, axis=2), 4, axis=3)))
    x = np.clip(x + noise * rng.normal(size=x.shape), 0, 1)
    return z, x.astype(np.float32)


def test_train_decoder_learns_and_is_reproducible():
    z, x = _toy()
    config = DecoderConfig(decoder="deconv", epochs=6, batch_size=16, seed=1)
    a, b = train_decoder(z, x, config), train_decoder(z, x, config)
    assert a.history[-1]["val_mse"] < a.history[0]["val_mse"]
    assert [h["val_mse"] for h in a.history] == [h["val_mse"] for h in b.history]
    assert a.images_per_second > 0 and 1 <= a.best_epoch <= len(a.history)


def test_training_schedules_and_decoder_options_are_used():
    z, x = _toy()
    expo = train_decoder(z, x, DecoderConfig(decoder="deconv", epochs=3, batch_size=32, lr=1e-3,
                                             schedule="exponential", lr_gamma=0.93))
    assert [round(h["lr"], 8) for h in expo.history] == [round(1e-3 * 0.93 ** k, 8) for k in range(3)]
    const = train_decoder(z, x, DecoderConfig(decoder="nonoverlap", epochs=2, batch_size=32, schedule="constant",
                                              decoder_kwargs={"depth": "deep"}, betas=(0.5, 0.999), amsgrad=True))
    assert {h["lr"] for h in const.history} == {1e-3}
    assert any(isinstance(m, torch.nn.Hardswish) for m in const.model.modules()), "decoder_kwargs reach the decoder"
    with pytest.raises(AttackError, match="unknown schedule 'step'"):
        DecoderConfig(schedule="step")


def test_train_decoder_bad_input():
    z, x = _toy(20)
    with pytest.raises(AttackError, match="only 20 attacker samples"):
        train_decoder(z, x)
    z, x = _toy()
    with pytest.raises(AttackError, match="96 feature rows but 95 images"):
        train_decoder(z, x[:95])
    z[3, 0, 0, 0] = np.nan
    with pytest.raises(AttackError, match="NaN or Inf"):
        train_decoder(z, x)


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
