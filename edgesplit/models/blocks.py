"""Natural blocks of an architecture: the module paths after which block-granularity cuts sit.

Precedence: a `cut_blocks` attribute on the model (a list of module paths: the extension point for
user models), then a rule for a known family (VGG: one block per conv group, ending at its
max-pool), then the generic rule: top-level children, with plain `nn.Sequential` /
`nn.ModuleList` containers opened one level at a time, dropping reshape-only modules (identity,
flatten) and single layers immediately followed by their own normalisation, activation or dropout.
"""

from __future__ import annotations

import torchvision
from torch import nn

# Layers that finish the layer before them rather than start a block of their own.
_TRAILING = (
    nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Hardswish,
    nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Mish, nn.Dropout, nn.Dropout2d, nn.AlphaDropout,
)
_CONTAINERS = (nn.Sequential, nn.ModuleList)
# Modules that only rename or reshape their input: a cut after them sends what the cut before sends.
_RESHAPE_ONLY = (nn.Identity, nn.Flatten, nn.Unflatten)


def block_paths(model: nn.Module) -> list[str]:
    """Module paths, in definition order, whose ends are the natural block boundaries of `model`."""
    declared = getattr(model, "cut_blocks", None)
    if declared is not None:
        return list(declared() if callable(declared) else declared)
    if isinstance(model, torchvision.models.VGG):
        return _vgg_blocks(model)
    return _generic_blocks(model)


def is_trailing(module: nn.Module) -> bool:
    return isinstance(module, _TRAILING)


def _expand(prefix: str, module: nn.Module) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        path = f"{prefix}.{name}" if prefix else name
        if type(child) in _CONTAINERS:
            out.extend(_expand(path, child))
        elif not isinstance(child, _RESHAPE_ONLY):
            out.append((path, child))
    return out


def _generic_blocks(model: nn.Module) -> list[str]:
    items = _expand("", model)
    keep = []
    for k, (path, module) in enumerate(items):
        nxt = items[k + 1][1] if k + 1 < len(items) else None
        is_layer = not any(True for _ in module.children())
        if is_layer and nxt is not None and is_trailing(nxt) and not isinstance(module, (nn.Dropout, nn.Dropout2d)):
            continue
        keep.append(path)
    return keep


def _vgg_blocks(model: nn.Module) -> list[str]:
    pools = [f"features.{i}" for i, m in enumerate(model.features) if isinstance(m, nn.MaxPool2d)]
    rest = [p for p in _generic_blocks(model) if not p.startswith("features.")]
    return pools + rest
