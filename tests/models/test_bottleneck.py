"""A bottleneck at a cut: it squeezes the features, travels with the checkpoint, and bad options are named."""

import pytest
import torch

from edgesplit.errors import ModelError


def test_bottleneck_squeezes_the_cut_and_travels_with_the_spec(tmp_path):
    from edgesplit.models import create_model, cut_points, save_checkpoint, split

    model = create_model("vgg11_bn", bottleneck={"after": "features.7", "channels": 8}, seed=0)
    names = [c.name for c in cut_points(model, torch.zeros(1, 3, 32, 32))]
    assert names[:4] == ["features.3", "features.7.layer", "features.7.squeeze", "features.7"]
    parts = split(model, "features.7.squeeze")
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        z = parts.head(x)
        assert z.shape == (3, 8, 8, 8) and z.min() >= 0 and z.max() <= 1, "CEM's 8x8x8 sigmoid features"
        assert torch.allclose(parts.tail(z), model(x), atol=1e-5)
    path = save_checkpoint(model, tmp_path / "cem.pt")
    again = create_model("vgg11_bn", checkpoint=str(path))
    assert again.edgesplit_spec.kwargs["bottleneck"]["channels"] == 8
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_bottleneck_errors_name_the_problem():
    from edgesplit.models import create_model

    with pytest.raises(ModelError, match="no module 'features.77'"):
        create_model("vgg11_bn", bottleneck={"after": "features.77", "channels": 8})
    with pytest.raises(ModelError, match="not an N x C x H x W"):
        create_model("classifier4", bottleneck={"after": "fc.1", "channels": 8})
    with pytest.raises(ModelError, match="'after'"):
        create_model("vgg11_bn", bottleneck=8)
