"""Training a classifier: it learns, is reproducible, uses every training image every epoch (never a batch of
one) and recalibrates BatchNorm."""

import numpy as np
import pytest
import torch
from torch import nn

from edgesplit.data import load_dataset
from edgesplit.errors import ModelError
from edgesplit.models import create_model, train_classifier
from edgesplit.models.training import TrainConfig, evaluate, recalibrate_batchnorm
from edgesplit.progress import RecordingProgress


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", split="train"), load_dataset("digits", split="test")


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


class Counting(torch.utils.data.Dataset):
    """Random 8-feature samples that count how often each is read."""

    def __init__(self, n: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(n, 8, generator=generator), torch.arange(n) % 2
        self.reads = np.zeros(n, dtype=int)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        self.reads[i] += 1
        return self.x[i], int(self.y[i])


def _bn_mlp() -> nn.Module:
    """BatchNorm1d: fails in training mode on a batch of one sample."""
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))


def test_classifier4_reaches_95_percent_on_digits(digits):
    train, test = digits
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32)
    progress = RecordingProgress()
    result = train_classifier(model, train, test, TrainConfig(epochs=8, seed=0), progress=progress)
    assert result.test_accuracy >= 0.95
    assert result.test_accuracy == pytest.approx(evaluate(model, test)["accuracy"])
    assert len(result.history) == 8 and result.history[-1]["loss"] < result.history[0]["loss"]
    assert sum(1 for kind, *_ in progress.events if kind == "update") == 8 * -(-len(train) // 64)  # every image


def test_training_is_reproducible_with_a_seed(digits):
    train, _ = digits
    small = torch.utils.data.Subset(train, range(192))
    initial = _weights(create_model("classifier4", in_chans=1, img_size=32))
    runs = []
    for seed in (3, 3, 4):
        model = create_model("classifier4", in_chans=1, img_size=32)
        model.load_state_dict(initial)
        train_classifier(model, small, None, TrainConfig(epochs=1, batch_size=32, seed=seed))
        runs.append(_weights(model))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_bad_training_config():
    with pytest.raises(ModelError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ModelError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ModelError, match="empty"):
        train_classifier(create_model("resnet20"), torch.utils.data.TensorDataset(torch.zeros(0, 3, 32, 32)))


def test_batchnorm_recalibration_fixes_small_momentum_models(digits):
    """torchvision's MobileNetV3 has BN momentum 0.01: without recalibration a short run evaluates at chance."""
    from edgesplit.models.training import recalibrate_batchnorm

    train, test = digits
    small = torch.utils.data.Subset(train, range(256))
    model = create_model("mobilenet_v3_small", in_chans=1, img_size=32)
    train_classifier(model, small, None, TrainConfig(epochs=3, seed=0, recalibrate_bn=False))
    before = evaluate(model, test)["accuracy"]
    assert recalibrate_batchnorm(model, small) > 10
    after = evaluate(model, test)["accuracy"]
    assert before < 0.3 < after, (before, after)
    assert all(m.momentum == 0.01 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


# --- every image, every epoch (issue 13, item 17) ------------------------------------------------------------


@pytest.mark.parametrize("n, batches", [(120, 2), (65, 1), (129, 2), (130, 3)])
def test_training_uses_every_image_every_epoch_without_a_batch_of_one(n, batches):
    data = Counting(n)
    progress = RecordingProgress()
    train_classifier(_bn_mlp(), data, None, TrainConfig(epochs=2, batch_size=64, recalibrate_bn=False),
                     progress=progress)
    assert data.reads.tolist() == [2] * n  # every image, once per epoch
    assert sum(kind == "update" for kind, *_ in progress.events) == 2 * batches


def test_batchnorm_recalibration_handles_a_last_batch_of_one():
    data = Counting(129)
    assert recalibrate_batchnorm(_bn_mlp(), data, batch_size=128) == 1
    assert data.reads.tolist() == [1] * 129


def test_training_on_a_single_image_is_a_clear_error():
    with pytest.raises(ModelError, match="at least 2"):
        train_classifier(_bn_mlp(), Counting(1), None, TrainConfig(epochs=1))
