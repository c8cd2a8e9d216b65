"""Zoo entries built from torchvision (weights=None): VGGs, CEM's sigmoid VGG-11, MobileNetV3-Small."""

from __future__ import annotations

from torch import nn

from edgesplit.models.adapt import torchvision_model
from edgesplit.models.entries import register_model


@register_model(description="VGG-11 with BatchNorm (512-wide head at <= 64 px)", source="torchvision; CEM")
def vgg11_bn(num_classes: int = 10, in_chans: int = 3, img_size: int = 32, **kw) -> nn.Module:
    return torchvision_model("vgg11_bn", num_classes, in_chans, img_size, **kw)


@register_model(description="VGG-11-BN with sigmoid activations in the conv layers", source="CEM (vgg11_bn_sgm)")
def vgg11_bn_sgm(num_classes: int = 10, in_chans: int = 3, img_size: int = 32, **kw) -> nn.Module:
    model = torchvision_model("vgg11_bn", num_classes, in_chans, img_size, **kw)
    for i, m in enumerate(model.features):
        if isinstance(m, nn.ReLU):
            model.features[i] = nn.Sigmoid()
    return model


@register_model(description="VGG-16 with BatchNorm", source="torchvision; Golden Partition Zone")
def vgg16_bn(num_classes: int = 10, in_chans: int = 3, img_size: int = 32, **kw) -> nn.Module:
    return torchvision_model("vgg16_bn", num_classes, in_chans, img_size, **kw)


@register_model(description="VGG-19 (no BatchNorm)", source="torchvision; Golden Partition Zone")
def vgg19(num_classes: int = 10, in_chans: int = 3, img_size: int = 32, **kw) -> nn.Module:
    return torchvision_model("vgg19", num_classes, in_chans, img_size, **kw)


@register_model(description="MobileNetV3-Small (stride-1 stem at <= 64 px)",
                source="torchvision; efficient-split-dnn-privacy")
def mobilenet_v3_small(num_classes: int = 10, in_chans: int = 3, img_size: int = 32, **kw) -> nn.Module:
    return torchvision_model("mobilenet_v3_small", num_classes, in_chans, img_size, **kw)
