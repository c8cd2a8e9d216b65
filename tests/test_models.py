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


def test_a_model_option_nobody_registered_names_the_package_to_import(monkeypatch):
    from edgesplit.models import options

    assert options.option_names()[:2] == ["bottleneck", "defense"], "a defense goes after a bottleneck"
    monkeypatch.setitem(options.KNOWN, "watermark", "edgesplit.watermarks")  # known, registered by nobody
    with pytest.raises(ModelError, match=r"^model option 'watermark' comes from edgesplit\.watermarks: import it "
                                         r"before building this model$") as err:
        create_model("classifier4", watermark={"strength": 1})
    assert len(str(err.value).splitlines()) == 1


def test_models_alone_refuse_a_defended_spec_until_defenses_are_imported():
    import subprocess
    import sys

    code = ("import sys\nfrom edgesplit.errors import ModelError\nfrom edgesplit.models import create_model\n"
            "assert 'edgesplit.defenses' not in sys.modules\n"
            "d = {'cut': 'features.1', 'name': 'noise', 'params': {}}\n"
            "try:\n    create_model('classifier4', in_chans=1, defense=d)\n"
            "except ModelError as e:\n    print(e)\n"
            "import edgesplit.defenses\nprint(create_model('classifier4', in_chans=1, defense=d).edgesplit_defense)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == ("model option 'defense' comes from edgesplit.defenses: import it before "
                                   "building this model")
    assert "'name': 'noise'" in out.splitlines()[1]


def test_a_container_module_whose_output_alone_crosses_is_a_cut():
    from edgesplit.models import create_model
    from edgesplit.models.cuts import analyse

    analysis = analyse(create_model("mobilenet_v3_large", img_size=224, seed=0), torch.zeros(1, 3, 224, 224))
    cut = analysis.resolve("features.13.block.0")  # the expansion conv (conv-BN-hardswish) of features[13]
    assert cut.shape == (672, 14, 14), "the reconstruction seed's 672x14x14 cut at 224 px"
