"""`ir18`: the IR ResNet used for face recognition (face.evoLVe / InsightFace style, IR-18).

Units are BN -> conv3x3 -> PReLU -> conv3x3(stride) -> BN plus a shortcut; stages of 64, 128,
256, 512 channels each halve the side, so a 64x64 face gives 64x32², 128x16², 256x8², 512x4².
"""

from __future__ import annotations

from torch import nn

from edgesplit.models.entries import register_model


class IRUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        if cin == cout:
            self.shortcut = nn.MaxPool2d(1, stride)
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.residual = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        return self.residual(x) + self.shortcut(x)


class IRNet(nn.Module):
    def __init__(self, units=(2, 2, 2, 2), num_classes: int = 10, in_chans: int = 3, img_size: int = 64,
                 embedding: int = 512) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
                                         nn.PReLU(64))
        body, cin = [], 64
        for cout, n in zip((64, 128, 256, 512), units, strict=True):
            for j in range(n):
                body.append(IRUnit(cin, cout, 2 if j == 0 else 1))
                cin = cout
        self.body = nn.Sequential(*body)
        side = img_size
        for _ in range(4):
            side = (side - 1) // 2 + 1
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(512), nn.Dropout(0.4), nn.Flatten(1),
            nn.Linear(512 * side * side, embedding), nn.BatchNorm1d(embedding),
        )
        self.fc = nn.Linear(embedding, num_classes)

    def forward(self, x):
        return self.fc(self.output_layer(self.body(self.input_layer(x))))


@register_model(description="IR-18 face-recognition ResNet (PReLU units, 512-d embedding)",
                source="Golden Partition Zone (IR-152 family); face.evoLVe")
def ir18(num_classes: int = 10, in_chans: int = 3, img_size: int = 64, **kw) -> nn.Module:
    return IRNet((2, 2, 2, 2), num_classes, in_chans, img_size, **kw)
