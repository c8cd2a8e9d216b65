"""A channel bottleneck inserted after any module: the head squeezes its features, the tail expands them.

CEM's standard benchmark cuts VGG11-BN after its second conv group (128x8x8) and inserts a conv to 8
channels + BatchNorm + sigmoid, so the device sends 8x8x8 values in [0, 1]; the server side starts with a
conv back to 128 channels. `insert_bottleneck(model, after="features.7", channels=8)` does that for any
model: the module at `after` becomes `Sequential(layer, squeeze, expand)`, and the new cut `<after>.squeeze`
joins the model's block cuts. Given to `create_model` as `bottleneck={"after": ..., "channels": ...}` it is
part of the model's spec, so checkpoints, bundles and reference rebuilds carry it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from edgesplit.errors import ModelError

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "none": nn.Identity}


def insert_bottleneck(model: nn.Module, after: str, channels: int, kernel_size: int = 3,
                      activation: str = "sigmoid", img_size: int = 32, in_chans: int = 3) -> nn.Module:
    """Insert a squeeze (conv -> BN -> activation) / expand (conv -> BN -> ReLU) pair after module `after`."""
    from edgesplit.models.blocks import block_paths

    if channels < 1 or kernel_size not in (1, 3):
        raise ModelError(f"bottleneck needs channels >= 1 and kernel_size 1 or 3, got {channels}, {kernel_size}")
    if activation not in ACTIVATIONS:
        raise ModelError(f"unknown bottleneck activation {activation!r}: use one of {', '.join(ACTIVATIONS)}")
    modules = dict(model.named_modules())
    if after not in modules or not after:
        known = [n for n in modules if n]
        from edgesplit.errors import closest

        raise ModelError(f"bottleneck: no module {after!r} in {type(model).__name__} ({closest(after, known)})")
    width = _output_channels(model, after, in_chans, img_size)
    blocks = block_paths(model)
    pad = kernel_size // 2
    squeeze = nn.Sequential(nn.Conv2d(width, channels, kernel_size, 1, pad), nn.BatchNorm2d(channels),
                            ACTIVATIONS[activation]())
    expand = nn.Sequential(nn.Conv2d(channels, width, kernel_size, 1, pad), nn.BatchNorm2d(width), nn.ReLU())
    # the old boundary is now after `layer`; the bottleneck's output is a new block cut before the expansion
    return insert_after(model, after, {"squeeze": squeeze, "expand": expand}, cut="squeeze", keep_layer_cut=True,
                        blocks=blocks)


def insert_after(model: nn.Module, after: str, modules: dict[str, nn.Module], cut: str,
                 keep_layer_cut: bool = False, blocks: list[str] | None = None) -> nn.Module:
    """Replace the module at `after` by `Sequential(layer=<it>, **modules)`; `<after>.<cut>` becomes the block
    cut in its place (with `keep_layer_cut`, `<after>.layer` and `<after>` stay cuts too)."""
    from edgesplit.models.blocks import block_paths

    blocks = block_paths(model) if blocks is None else blocks
    found = dict(model.named_modules())
    if not after or after not in found:
        from edgesplit.errors import closest

        raise ModelError(f"no module {after!r} in {type(model).__name__} ({closest(after, [n for n in found if n])})")
    parent_path, _, leaf = after.rpartition(".")
    parent = found[parent_path] if parent_path else model
    setattr(parent, leaf, nn.Sequential(OrderedDict(layer=found[after], **modules)))
    new = f"{after}.{cut}"
    cut_blocks: list[str] = []
    for path in blocks:
        if path == after:
            cut_blocks += [f"{after}.layer", new, after] if keep_layer_cut else [new]
        else:
            cut_blocks.append(path)
    if after not in blocks:
        cut_blocks = _insert_in_order(model, cut_blocks, new)
    model.cut_blocks = cut_blocks
    return model


def output_shape(model: nn.Module, after: str, in_chans: int, img_size: int) -> tuple[int, ...]:
    """Per-sample output shape of the module at `after` on a zero input."""
    seen: list[torch.Tensor] = []
    hook = dict(model.named_modules())[after].register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        with torch.no_grad():
            was_training = model.training
            model.eval()
            model(torch.zeros(1, in_chans, img_size, img_size))
            model.train(was_training)
    finally:
        hook.remove()
    return tuple(seen[0].shape[1:]) if seen and isinstance(seen[0], torch.Tensor) else ()


def _output_channels(model: nn.Module, after: str, in_chans: int, img_size: int) -> int:
    shape = output_shape(model, after, in_chans, img_size)
    if len(shape) != 3:
        raise ModelError(f"bottleneck after {after!r}: its output {(1, *shape) if shape else None} is not an "
                         f"N x C x H x W feature map")
    return int(shape[0])


def _insert_in_order(model: nn.Module, paths: list[str], new: str) -> list[str]:
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return sorted({*paths, new}, key=lambda p: order.get(p, len(order)))


def apply_option(model: nn.Module, spec, value) -> nn.Module:
    """The `bottleneck={"after": ..., "channels": ...}` model option (registered in `options.py`)."""
    if not isinstance(value, dict) or "after" not in value or "channels" not in value:
        raise ModelError("bottleneck must be a mapping with 'after' (a module path) and 'channels', e.g. "
                         "{'after': 'features.7', 'channels': 8}")
    return insert_bottleneck(model, img_size=spec.img_size, in_chans=spec.in_chans, **value)
