"""Training on CUDA: decoders, classifiers and defenses; repeatable within tolerance; near the CPU's figures.
Skipped cleanly without a GPU (the `gpu` marker, tests/conftest.py)."""

import numpy as np
import pytest
import torch

from edgesplit.attacks import DecoderConfig, reconstruct, train_decoder
from edgesplit.models import device as device_module

pytestmark = pytest.mark.gpu


def _data(n=360):
    from tests.attacks.test_distributed import _digits_features

    return _digits_features(n)


def _psnr(recon, originals) -> float:
    from tests.attacks.test_distributed import _psnr

    return _psnr(recon, originals)


def _run(features, images, device, **kwargs):
    config = DecoderConfig(decoder="deconv", epochs=8, seed=0, device=device, **kwargs)
    trained = train_decoder(features[:300], images[:300], config)
    assert next(trained.model.parameters()).device.type == torch.device(device).type
    return _psnr(reconstruct(trained.model, features[300:], config), images[300:]), trained


def test_decoder_on_cuda_repeats_within_tolerance_and_matches_the_cpu():
    features, images = _data()
    cpu, _ = _run(features, images, "cpu")
    first, trained = _run(features, images, "cuda")
    second, _ = _run(features, images, "cuda")
    assert abs(first - second) < 0.3, (first, second)  # cuDNN autotuning and bf16: repeatable within tolerance
    assert abs(first - cpu) < 1.0, (first, cpu)
    assert trained.images_per_second > 0


def test_decoder_fed_from_pinned_host_memory_matches_the_resident_run(monkeypatch):
    features, images = _data()
    resident, _ = _run(features, images, "cuda")
    monkeypatch.setattr(device_module, "RESIDENT_SHARE", 0.0)  # force the pinned, batch-by-batch path
    pinned, _ = _run(features, images, "cuda")
    assert abs(resident - pinned) < 0.3, (resident, pinned)


def test_gan_prior_and_noise_train_on_cuda():
    features, images = _data()
    psnr, trained = _run(features, images, "cuda", adversarial_weight=0.01, noise_std=0.05)
    assert np.isfinite(psnr) and len(trained.history) == 8


def test_classifier_and_defense_train_on_cuda():
    from edgesplit.data import load_dataset
    from edgesplit.defenses import DefendConfig, defend_model
    from edgesplit.models import create_model, train_classifier
    from edgesplit.models.training import TrainConfig

    train = load_dataset("digits", split="train", limit=256)
    test = load_dataset("digits", split="test", limit=128)
    model = create_model("classifier4", in_chans=1, img_size=32)
    result = train_classifier(model, train, test, TrainConfig(epochs=2), device="cuda")
    assert np.isfinite(result.history[-1]["loss"]) and next(model.parameters()).is_cuda
    for name, params in (("noise", {"std": 0.1}), ("cem", {}), ("adversarial", {}), ("lipschitz", {}),
                         ("pruning", {})):
        defended, report = defend_model(create_model("classifier4", in_chans=1, img_size=32, seed=0), "features.1",
                                        name, params, train, test, DefendConfig(epochs=1), device="cuda")
        assert not next(defended.parameters()).is_cuda, "the defended model comes back on the CPU"
        assert all(np.isfinite(v) for row in report["history"] for v in row.values()), name


def test_cli_audit_on_cuda(int8_bundle, tmp_path):
    import json

    from edgesplit.cli.main import main

    feats = tmp_path / "attack.npz"
    assert main(["emit", str(int8_bundle.path), "--split", "attack", "--out", str(feats), "--quiet"]) == 0
    assert main(["audit", "--bundle", str(int8_bundle.path), "--features", str(feats), "--decoder", "deconv",
                 "--epochs", "3", "--eval-limit", "32", "--device", "cuda", "--no-learning-curve",
                 "--out", str(tmp_path / "a"), "--quiet"]) == 0
    record = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert record["decoder"]["config"]["device"] == "cuda"
