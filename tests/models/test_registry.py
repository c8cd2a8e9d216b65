"""The zoo: every registered model builds at the sizes the seeds use and classifies a batch."""

import pytest
import torch
import torchvision
from torch import nn

from edgesplit.errors import ModelError
from edgesplit.models import ModelSpec, create_model, list_models, model_entries

REQUIRED = {"classifier4", "resnet18", "resnet20", "vgg11_bn", "vgg11_bn_sgm", "vgg16_bn", "vgg19",
            "mobilenet_v3_small", "ir18"}


def test_registry_holds_the_required_zoo():
    assert set(list_models()) >= REQUIRED
    assert all(e.description and e.source for e in model_entries())


def test_list_models_glob_and_torchvision():
    assert list_models("vgg*") == ["vgg11_bn", "vgg11_bn_sgm", "vgg16_bn", "vgg19"]
    everything = list_models(include_torchvision=True)
    assert "efficientnet_b0" in everything and "classifier4" in everything


@pytest.mark.parametrize("name", sorted(REQUIRED))
@pytest.mark.parametrize("size", [32, 64])
def test_zoo_model_classifies_small_inputs(name, size):
    model = create_model(name, num_classes=7, in_chans=3, img_size=size)
    assert not model.training, "create_model returns eval mode"
    assert model.edgesplit_spec == ModelSpec(name, 7, 3, size)
    with torch.no_grad():
        out = model(torch.rand(2, 3, size, size))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "vgg11_bn"])
def test_imagenet_sized_models_keep_torchvision_stems(name):
    model = create_model(name, img_size=224)
    reference = torchvision.models.get_model(name, weights=None, num_classes=10)
    ours = sum(p.numel() for p in model.parameters())
    theirs = sum(p.numel() for p in reference.parameters())
    assert ours == theirs, "at 224 px the torchvision architecture is unchanged"


def test_small_inputs_get_cifar_stems():
    model = create_model("resnet18", img_size=32)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    mobilenet = create_model("mobilenet_v3_small", img_size=32)
    assert mobilenet.features[0][0].stride == (1, 1)


def test_vgg11_bn_sgm_uses_sigmoid_in_features():
    model = create_model("vgg11_bn_sgm")
    kinds = {type(m) for m in model.features}
    assert nn.Sigmoid in kinds and nn.ReLU not in kinds


def test_in_chans_one():
    for name in ("classifier4", "resnet18", "mobilenet_v3_small", "vgg16_bn", "ir18", "resnet20"):
        model = create_model(name, in_chans=1, img_size=32)
        assert model(torch.rand(1, 1, 32, 32)).shape == (1, 10)


def test_any_torchvision_classifier_by_name():
    model = create_model("efficientnet_b0", num_classes=5, img_size=64)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 5)


def test_unknown_model_names_the_closest():
    with pytest.raises(ModelError, match="unknown model 'resnet19'.*closest: resnet18"):
        create_model("resnet19")


def test_weights_are_never_downloaded():
    with pytest.raises(ModelError, match="never downloads"):
        create_model("resnet50", weights="IMAGENET1K_V1")


@pytest.mark.parametrize("kwargs, pattern", [
    ({"num_classes": 0}, "num_classes"), ({"img_size": 4}, "img_size"), ({"in_chans": 0}, "in_chans"),
])
def test_bad_spec_values(kwargs, pattern):
    with pytest.raises(ModelError, match=pattern):
        create_model("resnet18", **kwargs)


def test_classifier4_rejects_size_not_divisible_by_16():
    with pytest.raises(ModelError, match="divisible by 16"):
        create_model("classifier4", img_size=40)


def test_seeded_creation_is_reproducible_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = create_model("resnet20", seed=3), create_model("resnet20", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    c = create_model("resnet20", seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values(), strict=True))
