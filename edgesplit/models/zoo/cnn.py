"""`classifier4`: the four-block CNN of the Golden Partition Zone (its `Classifier_4`).

Each block is conv3x3 -> BatchNorm -> MaxPool(2) -> ReLU; channels 64, 128, 256, 512, so a
64x64 input gives 64x32², 128x16², 256x8², 512x4² at the four block cuts.
"""

from __future__ import annotations

from torch import nn

from edgesplit.errors import ModelError
from edgesplit.models.entries import register_model


class ConvBlock(nn.Sequential):
    """conv3x3 -> BN -> maxpool -> ReLU: one block (a cut point at block granularity)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, 1, 1),
            nn.BatchNorm2d(cout),
            nn.MaxPool2d(2, 2),
            nn.ReLU(inplace=True),
        )


class Classifier4(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 1, img_size: int = 32, width: int = 64,
                 hidden: int = 256) -> None:
        super().__init__()
        if img_size % 16:
            raise ModelError(f"classifier4 needs an img_size divisible by 16 (four 2x poolings), got {img_size}")
        w = width
        self.features = nn.Sequential(
            ConvBlock(in_chans, w), ConvBlock(w, 2 * w), ConvBlock(2 * w, 4 * w), ConvBlock(4 * w, 8 * w)
        )
        side = img_size // 16
        self.flatten = nn.Flatten(1)
        self.fc = nn.Sequential(
            nn.Linear(8 * w * side * side, hidden), nn.Dropout(0.5), nn.Linear(hidden, num_classes)
        )

    def forward(self, x):
        return self.fc(self.flatten(self.features(x)))


@register_model(description="4-block CNN (conv-BN-pool-ReLU x4, 64..512 ch)", source="Golden Partition Zone")
def classifier4(num_classes: int = 10, in_chans: int = 1, img_size: int = 32, **kw) -> nn.Module:
    return Classifier4(num_classes, in_chans, img_size, **kw)
