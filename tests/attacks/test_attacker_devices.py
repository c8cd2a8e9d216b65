"""The white-box attack, the query-free attack's shadow head and the evaluation classifier train where they are
told (`device`) and say so; CUDA without a GPU is one line before any work. Their CUDA runs, beside the CPU's,
are in test_gpu_training.py."""

import numpy as np
import pytest
import torch

from edgesplit.attacks.queryfree import shadow_features, train_shadow_head
from edgesplit.attacks.recognisability import train_evaluator
from edgesplit.attacks.whitebox import WhiteboxConfig, invert_whitebox
from edgesplit.errors import AttackError, ModelError
from edgesplit.models import create_model, split
from edgesplit.models.device import modules_on

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")


def _target(seed=0):
    return split(create_model("classifier4", in_chans=1, img_size=32, seed=seed).eval(), "features.1")


def _data(n=64):
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 32, 32), dtype=np.float32), np.arange(n) % 4


@NO_GPU
def test_cuda_without_a_gpu_is_one_line_before_any_work():
    images, labels = _data()
    target = _target()
    before = [p.clone() for p in target.head.parameters()]
    calls = {
        "white-box": lambda: invert_whitebox(target.head, images[:2], (1, 32, 32), WhiteboxConfig(device="cuda")),
        "shadow head": lambda: train_shadow_head(target.head, target.tail, images, labels, device="cuda"),
        "shadow features": lambda: shadow_features(target.head, images, device="cuda"),
        "evaluator": lambda: train_evaluator(images, labels, 4, device="cuda"),
    }
    for name, call in calls.items():
        with pytest.raises(ModelError, match="sees no CUDA GPU") as error:
            call()
        assert "\n" not in str(error.value), name
    assert all(torch.equal(a, b) for a, b in zip(before, target.head.parameters(), strict=True)), "nothing was trained"


def test_devices_are_checked_and_recorded_on_the_cpu():
    with pytest.raises(AttackError, match="neither cpu nor cuda"):
        WhiteboxConfig(device="tpu")
    with pytest.raises(ModelError, match="unknown device 'tpu'"):
        train_evaluator(*_data(), 4, device="tpu")
    assert WhiteboxConfig().to_dict()["device"] == "cpu"
    images, labels = _data()
    target, shadow = _target(), _target(seed=7).head
    fit = train_shadow_head(shadow, target.tail, images, labels, epochs=1, batch_size=32)
    assert fit["device"] == "cpu" and len(fit["history"]) == 1
    evaluator, info = train_evaluator(images, labels, 4, epochs=1)
    assert info["device"] == "cpu" and next(evaluator.parameters()).device.type == "cpu"


def test_modules_on_leaves_each_module_where_it_was_even_on_an_error():
    head = _target().head
    weights = [p.data_ptr() for p in head.parameters()]
    with pytest.raises(RuntimeError, match="boom"), modules_on("cpu", head):
        raise RuntimeError("boom")
    assert [p.data_ptr() for p in head.parameters()] == weights, "on the CPU nothing moves (no copy)"
    with modules_on("cpu", torch.nn.ReLU()):  # a module without parameters or buffers
        pass
