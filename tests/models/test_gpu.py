"""CUDA checks of the model core; skipped cleanly on machines without a GPU (like CI)."""

import pytest
import torch

from edgesplit.models import analyse, create_model, split

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "classifier4"])
def test_split_on_cuda_matches_the_whole_model(name):
    model = create_model(name, img_size=32).cuda()
    x = torch.rand(4, 3, 32, 32, device="cuda")
    analysis = analyse(model, x[:1])
    with torch.no_grad():
        expected = model(x)
        for cut in analysis.blocks:
            s = split(model, cut, analysis=analysis)
            # cuDNN may pick different kernels per graph: equal to float tolerance, not bit-exact
            torch.testing.assert_close(s.tail(s.head(x)), expected, rtol=1e-4, atol=1e-5)


def test_training_step_on_cuda():
    from edgesplit.data import load_dataset
    from edgesplit.models import train_classifier
    from edgesplit.models.training import TrainConfig

    train = load_dataset("digits", split="train", limit=256)
    model = create_model("classifier4", in_chans=1, img_size=32)
    result = train_classifier(model, train, None, TrainConfig(epochs=1), device="cuda")
    assert result.history[0]["loss"] > 0 and next(model.parameters()).is_cuda
