"""Cut points: shapes, costs and legality, on the zoo, torchvision models and user modules."""

import pytest
import torch
from torch import nn

from edgesplit.errors import CutError, ModelError
from edgesplit.models import analyse, create_model, cut_points, split

PUBLISHED_RESNET18_MACS = 1.814e9  # torchvision's ResNet18_Weights: 1.81 GFLOPS (multiply-adds) at 224x224


def test_resnet18_224_block_cuts_shapes_and_macs():
    model = create_model("resnet18", img_size=224)
    analysis = analyse(model, torch.zeros(1, 3, 224, 224))
    shapes = {c.name: c.shape for c in analysis.blocks}
    assert list(shapes) == ["relu", "maxpool", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0",
                            "layer3.1", "layer4.0", "layer4.1", "avgpool"]
    assert shapes["relu"] == (64, 112, 112)
    assert shapes["maxpool"] == (64, 56, 56)
    assert shapes["layer2.1"] == (128, 28, 28)
    assert shapes["layer3.0"] == (256, 14, 14)
    assert shapes["layer4.1"] == (512, 7, 7)
    assert shapes["avgpool"] == (512, 1, 1)
    assert abs(analysis.total_macs - PUBLISHED_RESNET18_MACS) / PUBLISHED_RESNET18_MACS < 0.02
    assert analysis.total_params == sum(p.numel() for p in model.parameters())


def test_costs_are_derived_exactly_on_a_small_net():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    cuts = {c.name: c for c in cut_points(net, torch.zeros(1, 3, 8, 8), granularity="layer")}
    conv_macs = 8 * 8 * 8 * 3 * 3 * 3  # output elements x (in_ch x k x k)
    assert cuts["0"].macs == conv_macs and cuts["0"].params == 8 * 3 * 9 + 8
    assert cuts["1"].shape == (8, 8, 8)
    assert cuts["1"].payload_bytes == {"fp32": 2048, "fp16": 1024, "int8": 512}
    assert cuts["2"].shape == (512,)
    assert "3" not in cuts, "the last node is not a cut: the tail would be empty"
    blocks = [c.name for c in cut_points(net, torch.zeros(1, 3, 8, 8))]
    assert blocks == ["1"], "conv is finished by its ReLU; flatten only reshapes"


def test_gpz_shapes_at_64():
    """The Golden Partition Zone's block shapes at 64x64 (seeds/NOTES.md)."""
    expect = {
        "classifier4": [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)],
        "resnet18": [(64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 8, 8)],
    }
    c4 = {c.name: c.shape for c in cut_points(create_model("classifier4", in_chans=3, img_size=64),
                                               torch.zeros(1, 3, 64, 64))}
    assert [c4[f"features.{i}"] for i in range(4)] == expect["classifier4"]
    r18 = {c.name: c.shape for c in cut_points(create_model("resnet18", img_size=64), torch.zeros(1, 3, 64, 64))}
    assert [r18[f"layer{i}.1"] for i in range(1, 5)] == expect["resnet18"]
    ir = {c.name: c.shape for c in cut_points(create_model("ir18", img_size=64), torch.zeros(1, 3, 64, 64))}
    assert [ir[f"body.{i}"] for i in (1, 3, 5, 7)] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]


def test_cem_cut4_shape():
    """CEM's standard cut (VGG11-BN, cutlayer 4) is conv64-pool-conv128-pool: 128x8x8 at 32x32."""
    cuts = {c.name: c.shape for c in cut_points(create_model("vgg11_bn_sgm"), torch.zeros(1, 3, 32, 32))}
    assert cuts["features.3"] == (64, 16, 16)
    assert cuts["features.7"] == (128, 8, 8)


def test_mobilenet_v3_small_features_at_224():
    """efficient-split-dnn-privacy's cut: the `features` output, 576x7x7 at 224x224."""
    cuts = {c.name: c.shape for c in cut_points(create_model("mobilenet_v3_small", img_size=224),
                                                 torch.zeros(1, 3, 224, 224))}
    assert cuts["features.12"] == (576, 7, 7)
    assert cuts["features.3"] == (24, 28, 28)


def test_cut_inside_a_residual_block_names_nearest_valid_cuts():
    model = create_model("resnet18")
    with pytest.raises(CutError, match=r"would send 2 tensors.*nearest valid cuts: layer2\.0, layer2\.1"):
        split(model, "layer2.1.conv1")


def test_unknown_cut_names_the_closest():
    with pytest.raises(CutError, match="unknown cut 'layer9.1'.*closest"):
        split(create_model("resnet18"), "layer9.1")


def test_layer_granularity_is_a_superset_with_single_crossings():
    model = create_model("resnet20")
    analysis = analyse(model, torch.zeros(1, 3, 32, 32))
    layer_idx = {c.index for c in analysis.layers}
    assert {c.index for c in analysis.blocks} <= layer_idx
    assert len(analysis.layers) > len(analysis.blocks)
    for cut in analysis.layers:
        assert analysis.traced.nodes[cut.index].crossing == (cut.node,)
    # every node inside a residual block (before its add) is excluded
    inner = [i for i in analysis.traced.nodes if "layer2.1" in i.owners and i.node.op == "call_module"]
    assert inner and not any(i.index in layer_idx for i in inner[:-1])


def test_layer_cut_aliases_resolve():
    model = create_model("resnet18")
    analysis = analyse(model, torch.zeros(1, 3, 32, 32))
    assert analysis.resolve("layer1_0_relu_1").name == "layer1.0"
    assert analysis.resolve("bn1").shape == (64, 32, 32)


class UserNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 6, 3, stride=2, padding=1))
        self.head = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x):
        x = self.body(self.act(self.stem(x)))
        return self.head(x.flatten(1))


def test_user_module_generic_blocks_and_declared_blocks():
    net = UserNet().eval()
    names = [c.name for c in cut_points(net, torch.zeros(1, 3, 8, 8))]
    assert names == ["act", "body.1", "body.2"]
    net.cut_blocks = ["body"]
    assert [c.name for c in cut_points(net, torch.zeros(1, 3, 8, 8))] == ["body"]


def test_untraceable_model_gives_a_clear_error():
    class Dynamic(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    with pytest.raises(ModelError, match="cannot trace Dynamic"):
        cut_points(Dynamic(), torch.zeros(1, 3, 8, 8))


def test_wrong_input_shape_gives_a_clear_error():
    with pytest.raises(ModelError, match="failed on an input of shape"):
        cut_points(create_model("resnet18"), torch.zeros(1, 5, 32, 32))
    with pytest.raises(ModelError, match="granularity"):
        cut_points(create_model("resnet18"), torch.zeros(1, 3, 32, 32), granularity="module")


def test_a_container_module_whose_output_alone_crosses_is_a_cut():
    from edgesplit.models import create_model
    from edgesplit.models.cuts import analyse

    analysis = analyse(create_model("mobilenet_v3_large", img_size=224, seed=0), torch.zeros(1, 3, 224, 224))
    cut = analysis.resolve("features.13.block.0")  # the expansion conv (conv-BN-hardswish) of features[13]
    assert cut.shape == (672, 14, 14), "the reconstruction seed's 672x14x14 cut at 224 px"
