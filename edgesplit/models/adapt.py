"""Adapting torchvision classifiers to edgesplit's inputs: any channel count, and small images.

Inputs of `SMALL_INPUT` pixels or less get CIFAR-style stems (no early downsampling), so 32x32
and 64x64 images keep useful spatial size at every cut, as in the seeds' ResNet and VGG runs.
"""

from __future__ import annotations

import torchvision
from torch import nn

from edgesplit.errors import ModelError

SMALL_INPUT = 64


def is_small(img_size: int) -> bool:
    return img_size <= SMALL_INPUT


def torchvision_model(name: str, num_classes: int, in_chans: int, img_size: int, **kwargs) -> nn.Module:
    """`torchvision.models.get_model(name, weights=None)` adapted to `in_chans` and small inputs."""
    if "weights" in kwargs and kwargs["weights"] is not None:
        raise ModelError("edgesplit never downloads weights: drop 'weights' and pass a local checkpoint instead")
    kwargs.pop("weights", None)
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    if is_small(img_size):
        adapt_small_input(model, img_size)
    if in_chans != 3:
        replace_first_conv(model, in_chans)
    return model


def adapt_small_input(model: nn.Module, img_size: int) -> None:
    """Remove the early downsampling of known families in place (unknown ones are left as built)."""
    if isinstance(model, torchvision.models.ResNet):
        out = model.conv1.out_channels
        model.conv1 = nn.Conv2d(model.conv1.in_channels, out, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif isinstance(model, torchvision.models.VGG):
        _small_vgg_head(model, img_size)
    elif isinstance(model, (torchvision.models.MobileNetV3, torchvision.models.MobileNetV2,
                            torchvision.models.EfficientNet)):
        first = _first_conv(model)
        first.stride = (1, 1)


def _small_vgg_head(model: nn.Module, img_size: int) -> None:
    # torchvision's VGG pools to 7x7 and feeds a 25088x4096 layer; CIFAR VGGs use a 512-wide head.
    side = img_size
    for m in model.features:
        if isinstance(m, nn.MaxPool2d):
            side //= 2
    if side < 1:
        raise ModelError(f"img_size {img_size} is too small for VGG's five poolings: use 32 or more")
    num_classes = model.classifier[-1].out_features
    model.avgpool = nn.Identity()
    model.classifier = nn.Sequential(
        nn.Linear(512 * side * side, 512), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(512, num_classes),
    )


def _first_conv(model: nn.Module) -> nn.Conv2d:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ModelError(f"{type(model).__name__} has no Conv2d to adapt")


def replace_first_conv(model: nn.Module, in_chans: int) -> None:
    """Swap the first Conv2d for one taking `in_chans` channels (same geometry, fresh weights)."""
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                new = nn.Conv2d(in_chans, child.out_channels, child.kernel_size, child.stride, child.padding,
                                child.dilation, groups=1 if child.groups == child.in_channels == 3 else child.groups,
                                bias=child.bias is not None, padding_mode=child.padding_mode)
                setattr(parent, child_name, new)
                return
    raise ModelError(f"{type(model).__name__} has no Conv2d to adapt to in_chans={in_chans}")
