"""Training on CUDA: decoders, classifiers, defenses and the other attackers (white-box, shadow head, evaluation
classifier); repeatable within tolerance; near the CPU's figures. Skipped cleanly without a GPU (the `gpu`
marker, tests/conftest.py)."""

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


def _digits(split, limit):
    from edgesplit.data import load_dataset

    images, labels = load_dataset("digits", split=split, limit=limit).tensors()
    return images, labels


def _target(seed=0):
    from edgesplit.models import create_model, split

    return split(create_model("classifier4", in_chans=1, img_size=32, seed=seed).eval(), "features.1")


def _on_cpu(*modules) -> bool:
    return all(t.device.type == "cpu" for m in modules for t in (*m.parameters(), *m.buffers()))


def test_whitebox_inversion_on_cuda_matches_the_cpu():
    from edgesplit.attacks.whitebox import WhiteboxConfig, invert_whitebox

    images, _ = _digits("test", 32)
    attacker, _ = _digits("attack", 256)
    head = _target().head
    with torch.no_grad():
        observed = head(images).numpy()
    psnr = {}
    for device in ("cpu", "cuda"):
        recon = invert_whitebox(head, observed, tuple(images.shape[1:]), WhiteboxConfig(steps=100, device=device),
                                attacker.numpy().mean(0))
        assert recon.device.type == "cpu" and _on_cpu(head), "the head is left where it was"
        psnr[device] = _psnr(recon, images.numpy())
    floor = _psnr(attacker.mean(0, keepdim=True).expand_as(images), images.numpy())
    assert psnr["cuda"] > floor + 10, (psnr, floor)  # about 31 dB over a 13 dB floor on the CPU
    assert abs(psnr["cuda"] - psnr["cpu"]) < 1.0, psnr  # bf16 head passes: the same inversion within 1 dB


def test_shadow_head_trains_on_cuda_near_the_cpu():
    from edgesplit.attacks.queryfree import shadow_features, train_shadow_head

    images, labels = _digits("attack", 256)
    tail = _target().tail
    fits, shadows = {}, {}
    for device in ("cpu", "cuda"):
        shadows[device] = _target(seed=7).head  # the same initial weights on both devices
        fits[device] = train_shadow_head(shadows[device], tail, images.numpy(), labels.numpy(), epochs=4,
                                         batch_size=32, device=device)
        assert _on_cpu(shadows[device], tail), "shadow head and tail are left where they were"
    acc = {d: f["history"][-1]["train_acc_through_tail"] for d, f in fits.items()}
    assert fits["cuda"]["device"] == "cuda" and acc["cuda"] > 0.4, acc  # 0.64 on the CPU; chance is 0.1
    assert abs(acc["cuda"] - acc["cpu"]) < 0.1, acc
    on_cuda = shadow_features(shadows["cuda"], images.numpy(), device="cuda")  # fp32 (cuDNN may use TF32)
    np.testing.assert_allclose(on_cuda, shadow_features(shadows["cuda"], images.numpy()), rtol=1e-2, atol=1e-2)
    assert _on_cpu(shadows["cuda"])


def test_evaluation_classifier_trains_on_cuda_near_the_cpu():
    from edgesplit.attacks.recognisability import recognition, train_evaluator

    images, labels = _digits("test", 64)
    attacker, attacker_labels = _digits("attack", None)
    floor = attacker.double().mean(0, keepdim=True)
    rates = {}
    for device in ("cpu", "cuda"):
        evaluator, info = train_evaluator(attacker.numpy(), attacker_labels.numpy(), 10, epochs=8, device=device)
        assert next(evaluator.parameters()).device.type == device and info["device"] == device
        rates[device] = recognition(images.double(), images.double(), labels.numpy(), evaluator, floor, info)
    assert rates["cuda"]["originals"] >= 0.8, rates  # as on the CPU (tests/attacks/test_recognisability.py)
    assert abs(rates["cuda"]["originals"] - rates["cpu"]["originals"]) <= 0.1, rates
    assert rates["cuda"]["floor"] <= rates["cuda"]["chance"] + 1e-9


def test_audit_records_the_device_every_attacker_trained_on(int8_bundle, checkpoint):
    from edgesplit.attacks.audit import audit
    from edgesplit.attacks.whitebox import WhiteboxConfig
    from edgesplit.runtime.emit import emit_split

    train = emit_split(int8_bundle.path, "digits", "attack")
    evaluation = emit_split(int8_bundle.path, "digits", "test", limit=16)
    config = DecoderConfig(decoder="deconv", epochs=2, device="cuda")
    white = audit(int8_bundle, train, evaluation, config, attack="whitebox", checkpoint=checkpoint,
                  whitebox=WhiteboxConfig(steps=60), learning_curve=False)
    assert white["attackers"]["whitebox"]["decoder"]["whitebox"]["device"] == "cuda"
    assert white["recognition"]["evaluator"]["device"] == "cuda"
    assert white["metrics"]["psnr"]["mean"] > white["floor"]["metrics"]["psnr"]["mean"] + 3
    free = audit(int8_bundle, train, evaluation, config, attack="query-free", checkpoint=checkpoint,
                 learning_curve=False, recognisability=False)
    figures = free["attackers"]["query-free"]["decoder"]
    assert figures["shadow"]["device"] == "cuda" and figures["config"]["device"] == "cuda"
