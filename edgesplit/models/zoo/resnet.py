"""ResNets: torchvision's `resnet18` (CIFAR stem for small inputs) and the CIFAR `resnet20`."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from edgesplit.models.adapt import torchvision_model
from edgesplit.models.entries import register_model


@register_model(description="ResNet-18 (torchvision; 3x3 stem, no max-pool at <= 64 px)", source="torchvision")
def resnet18(num_classes: int = 10, in_chans: int = 3, img_size: int = 32, **kw) -> nn.Module:
    return torchvision_model("resnet18", num_classes, in_chans, img_size, **kw)


class BasicBlockA(nn.Module):
    """CIFAR basic block with the parameter-free 'option A' shortcut (subsample + zero-pad channels)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride = stride
        self.pad = cout - cin

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x
        if self.stride != 1 or self.pad:
            short = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + short)


class ResNetCifar(nn.Module):
    def __init__(self, depth: int = 20, num_classes: int = 10, in_chans: int = 3, width: int = 16) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError("CIFAR ResNet depth must be 6n+2")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_chans, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        layers, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            blocks = [BasicBlockA(cin if j == 0 else cout, cout, 2 if (j == 0 and i > 0) else 1) for j in range(n)]
            layers.append(nn.Sequential(*blocks))
            cin = cout
        self.layer1, self.layer2, self.layer3 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


@register_model(description="ResNet-20 for CIFAR (16/32/64 ch, option-A shortcuts)", source="He et al. 2016; CEM")
def resnet20(num_classes: int = 10, in_chans: int = 3, img_size: int = 32, **kw) -> nn.Module:
    return ResNetCifar(20, num_classes, in_chans, **kw)
