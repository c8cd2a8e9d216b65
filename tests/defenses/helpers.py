"""A classifier4 (1x32x32) defended at one cut, its head's output, and a fixed batch to feed it."""

import torch

from edgesplit.defenses import apply_defense
from edgesplit.models import create_model, split

CUT = "features.1"


def _defended(name, params=None, seed=0):
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=seed)
    apply_defense(model, CUT, name, params, 1, 32)
    return model


def _head(model, x):
    with torch.no_grad():
        return split(model.eval(), f"{CUT}.defense").head(x)


X = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))


def _plain():
    return split(create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0).eval(), CUT).head(X)
