"""`split`: tail(head(x)) equals model(x) exactly, for every zoo model at every block cut."""

import pytest
import torch
from torch import nn

from edgesplit.models import analyse, create_model, list_models, split

SIZES = {"ir18": 64}


@pytest.mark.parametrize("name", list_models())
def test_split_is_exact_at_every_block_cut(name):
    size = SIZES.get(name, 32)
    model = create_model(name, num_classes=10, in_chans=3, img_size=size)
    x = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    analysis = analyse(model, x[:1])
    assert len(analysis.blocks) >= 4
    with torch.no_grad():
        expected = model(x)
        for cut in analysis.blocks:
            s = split(model, cut, analysis=analysis)
            feats = s.head(x)
            assert feats.shape[1:] == cut.shape
            assert torch.equal(s.tail(feats), expected), f"{name} at {cut.name}"


@pytest.mark.parametrize("name, size", [("resnet18", 224), ("mobilenet_v3_small", 224), ("efficientnet_b0", 64)])
def test_split_is_exact_on_larger_and_torchvision_models(name, size):
    model = create_model(name, img_size=size)
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    analysis = analyse(model, x[:1])
    with torch.no_grad():
        expected = model(x)
        for cut in analysis.blocks:
            s = split(model, cut, analysis=analysis)
            assert torch.equal(s.tail(s.head(x)), expected), f"{name} at {cut.name}"


def test_split_at_layer_cuts():
    model = create_model("mobilenet_v3_small")
    x = torch.rand(2, 3, 32, 32)
    analysis = analyse(model, x[:1])
    with torch.no_grad():
        expected = model(x)
        for cut in analysis.layers[::7]:
            s = split(model, cut.name, analysis=analysis)
            assert torch.equal(s.tail(s.head(x)), expected), cut.name


def test_halves_are_ordinary_modules_sharing_the_models_weights():
    model = create_model("resnet20")
    s = split(model, "layer2.0")
    assert isinstance(s.head, nn.Module) and isinstance(s.tail, nn.Module)
    head_params = sum(p.numel() for p in s.head.parameters())
    tail_params = sum(p.numel() for p in s.tail.parameters())
    assert head_params == s.cut.params
    assert head_params + tail_params == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        model.conv1.weight.add_(1.0)
    assert torch.equal(s.head.get_submodule("conv1").weight, model.conv1.weight)
    assert s.input_shape == (3, 32, 32)


def test_split_uses_the_recorded_spec_for_its_example_input():
    model = create_model("classifier4", in_chans=1, img_size=48)
    s = split(model, "features.1")
    assert s.cut.shape == (128, 12, 12)
    assert s.head(torch.rand(1, 1, 48, 48)).shape == (1, 128, 12, 12)


def test_split_keeps_training_mode():
    model = create_model("resnet20").train()
    s = split(model, "layer1.2")
    assert s.head.training and s.tail.training
