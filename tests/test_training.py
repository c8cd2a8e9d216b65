"""Training: reaches the accuracy the issue asks for on the embedded digits, reproducibly, and checkpoints load safely."""

import pickle

import pytest
import torch

from edgesplit.data import load_dataset
from edgesplit.errors import ModelError
from edgesplit.models import create_model, load_checkpoint, save_checkpoint, train_classifier
from edgesplit.models.training import TrainConfig, evaluate
from edgesplit.progress import RecordingProgress


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", split="train"), load_dataset("digits", split="test")


def test_classifier4_reaches_95_percent_on_digits(digits):
    train, test = digits
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32)
    progress = RecordingProgress()
    result = train_classifier(model, train, test, TrainConfig(epochs=8, seed=0), progress=progress)
    assert result.test_accuracy >= 0.95
    assert result.test_accuracy == pytest.approx(evaluate(model, test)["accuracy"])
    assert len(result.history) == 8 and result.history[-1]["loss"] < result.history[0]["loss"]
    assert sum(1 for kind, *_ in progress.events if kind == "update") == 8 * -(-len(train) // 64)  # every image


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


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


def test_checkpoint_roundtrip_records_the_architecture(tmp_path):
    model = create_model("resnet20", num_classes=4, img_size=32)
    path = save_checkpoint(model, tmp_path / "r20.pt", metrics={"test_accuracy": 0.5})
    ckpt = load_checkpoint(path)
    assert ckpt.spec.name == "resnet20" and ckpt.spec.num_classes == 4 and ckpt.metrics["test_accuracy"] == 0.5
    again = create_model("resnet20", checkpoint=str(path))
    assert again.edgesplit_spec.num_classes == 4
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))


def test_checkpoint_for_another_architecture_is_refused(tmp_path):
    path = save_checkpoint(create_model("resnet20"), tmp_path / "r20.pt")
    with pytest.raises(ModelError, match="saved for model 'resnet20', not 'resnet18'"):
        create_model("resnet18", checkpoint=str(path))
    with pytest.raises(ModelError, match="has num_classes=10, but num_classes=5"):
        create_model("resnet20", num_classes=5, checkpoint=str(path))


def test_bare_state_dict_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(create_model("resnet20").state_dict(), path)
    with pytest.raises(ModelError, match="does not fit model 'vgg11_bn'.*missing"):
        create_model("vgg11_bn", checkpoint=str(path))
    assert create_model("resnet20", checkpoint=str(path)) is not None


def test_checkpoint_with_code_is_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("open('PWNED', 'w').write('x')",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(ModelError, match="cannot be read as a weights-only torch file"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("content, pattern", [(b"", "cannot be read"), (b"garbage" * 10, "cannot be read")])
def test_corrupt_checkpoint(tmp_path, content, pattern):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=pattern):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        create_model("resnet18", checkpoint=str(tmp_path / "nope.pt"))


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
