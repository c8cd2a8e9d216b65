"""Decoders: every one reaches every image shape, the seeds' layouts, the families and the registry's errors."""

import pytest
import torch

from edgesplit.attacks import create_decoder, list_decoders
from edgesplit.attacks.decoders import resolve_families
from edgesplit.errors import AttackError

SHAPES = [((128, 8, 8), (1, 32, 32)), ((576, 7, 7), (3, 224, 224)), ((256,), (1, 32, 32)), ((64, 32, 32), (3, 32, 32)),
          ((24, 12, 12), (3, 48, 48)), ((40, 5, 5), (1, 32, 32))]


@pytest.mark.parametrize("name", list_decoders())
@pytest.mark.parametrize("feature_shape, image_shape", SHAPES)
def test_every_decoder_reaches_every_image_shape(name, feature_shape, image_shape):
    decoder = create_decoder(name, feature_shape, image_shape)
    out = decoder(torch.rand(2, *feature_shape))
    assert out.shape == (2, *image_shape) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name, kwargs", [
    ("deconv", {"stem": False, "output": "tanh", "act": "prelu"}),  # GPZ / efficient-split layouts
    ("upsample", {"act": "hardswish"}),
    ("nonoverlap", {"depth": "light"}), ("nonoverlap", {"depth": "medium"}), ("nonoverlap", {"depth": "deep"}),
])
def test_seed_layouts_of_the_decoders(name, kwargs):
    decoder = create_decoder(name, (576, 7, 7), (3, 224, 224), **kwargs)
    out = decoder(torch.rand(2, 576, 7, 7))
    assert out.shape == (2, 3, 224, 224) and out.min() >= 0 and out.max() <= 1
    convs = [m for m in decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    if name == "nonoverlap":
        assert all(m.kernel_size == m.stride for m in convs), "kernel = stride: non-overlapping"
        assert len(convs) == {"light": 3, "medium": 5, "deep": 5}[kwargs["depth"]]  # 4x 4x 2x vs five 2x
        assert any(isinstance(m, torch.nn.Hardswish) for m in decoder.modules())
    if kwargs.get("stem") is False:
        assert convs[0].in_channels == 576 and len(convs) == 5, "five k4 s2 stages straight from the features"


def test_registry_errors():
    assert list_decoders() == ["attention", "deconv", "nonoverlap", "resnet", "upsample"]
    with pytest.raises(AttackError, match="does not take these options"):
        create_decoder("deconv", (8, 4, 4), (1, 32, 32), depth="deep")
    with pytest.raises(AttackError, match="unknown depth 'huge'"):
        create_decoder("nonoverlap", (8, 4, 4), (1, 32, 32), depth="huge")
    with pytest.raises(AttackError, match="unknown decoder 'upsampel'.*closest: upsample"):
        create_decoder("upsampel", (8, 4, 4), (1, 32, 32))
    with pytest.raises(AttackError, match="cannot reasonably be decoded to 512x512"):
        create_decoder("deconv", (8, 2, 2), (3, 512, 512))
    with pytest.raises(AttackError, match="square 1- or 3-channel"):
        create_decoder("deconv", (8, 4, 4), (2, 32, 32))


def test_decoder_families():
    assert resolve_families("auto") == ("deconv", "nonoverlap")
    assert resolve_families(["deconv", "auto"]) == ("deconv", "nonoverlap")
    assert len(resolve_families("all")) == 5
    with pytest.raises(AttackError, match="unknown decoder 'deconf'.*closest: deconv"):
        resolve_families("deconf")
