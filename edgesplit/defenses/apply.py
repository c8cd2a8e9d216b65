"""Inserting a defense at a cut: `apply_defense(model, cut, name, params)`, and the `defense=` model option.

The module at `cut` becomes `Sequential(layer=<it>, defense=<head side>[, restore=<server side>])`; the
defended cut is `<cut>.defense` (what the device sends). The option `defense={"cut", "name", "params"}` is
stored in the model's spec, so `create_model` (and so export, profile, emit and audit) rebuild the
defended model from a checkpoint unchanged, once this module is imported (`import edgesplit.defenses`):
importing it registers the option with `edgesplit.models.options`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgesplit.defenses import layers
from edgesplit.defenses.registry import get_defense
from edgesplit.errors import DefenseError
from edgesplit.models.options import register_option

CHANNELWISE = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.SiLU, nn.Hardswish, nn.Sigmoid,
               nn.Tanh, nn.GELU, nn.MaxPool2d, nn.AvgPool2d, nn.Identity, nn.Dropout, nn.Dropout2d)


def defended_cut(cut: str) -> str:
    return f"{cut}.defense"


@register_option("defense")
def apply_option(model: nn.Module, spec, value: dict) -> nn.Module:
    """The `defense=` model option (see `edgesplit.models.options`)."""
    if not isinstance(value, dict) or not {"cut", "name"} <= set(value):
        raise DefenseError("defense must be a mapping with 'cut', 'name' and 'params'")
    return apply_defense(model, value["cut"], value["name"], value.get("params"), spec.in_chans, spec.img_size)


def apply_defense(model: nn.Module, cut: str, name: str, params: dict | None, in_chans: int, img_size: int):
    from edgesplit.models.bottleneck import insert_after, output_shape

    defense = get_defense(name)
    extra = {k: v for k, v in (params or {}).items() if k == "keep"}  # set by pruning once trained
    params = {**defense.resolve({k: v for k, v in (params or {}).items() if k != "keep"}), **extra}
    modules = dict(model.named_modules())
    if cut not in modules or not cut:
        raise DefenseError(f"defense {name}: cut {cut!r} is not a module path of {type(model).__name__}: use a "
                           f"block cut ('edgesplit cuts MODEL')")
    shape = output_shape(model, cut, in_chans, img_size)
    if not shape:
        raise DefenseError(f"defense {name}: the output of {cut} is not a tensor")
    head, tail = _modules(name, params, shape, modules[cut])
    insert_after(model, cut, {"defense": head, **({"restore": tail} if tail is not None else {})}, cut="defense")
    model.edgesplit_defense = {"cut": cut, "name": name, "params": params}
    return model


def _modules(name: str, p: dict, shape: tuple[int, ...], block: nn.Module):
    channels = shape[0]
    spatial = len(shape) == 3
    if name == "noise":
        return layers.GaussianNoise(p["std"], p["mean"], p["at_inference"]), None
    if name == "cem":  # CEM's entropy bound is on noisy features: the noise ships with the head
        return layers.GaussianNoise(p["noise_std"]), None
    if name == "dropout":
        if not 0 <= p["p"] < 1:
            raise DefenseError(f"dropout p must be in [0, 1), got {p['p']}")
        return layers.FeatureDropout(p["p"], p["at_inference"]), None
    if name == "topk":
        return layers.TopKChannels(_count(p["ratio"], channels, name), spatial), None
    if name == "channel-subset":
        n = _count(p["ratio"], channels, name)
        keep = sorted(np.random.default_rng(int(p["seed"])).choice(channels, n, replace=False).tolist())
        return layers.ChannelSelect(keep), layers.ChannelScatter(keep, channels, spatial)
    if name == "bottleneck":
        if not spatial:
            raise DefenseError("a bottleneck needs C x H x W features: cut earlier")
        c = int(p["channels"])
        if not 1 <= c < channels:
            raise DefenseError(f"bottleneck channels must be in [1, {channels}), got {c}")
        return (nn.Sequential(nn.Conv2d(channels, c, 3, 1, 1), nn.BatchNorm2d(c), nn.Sigmoid()),
                nn.Sequential(nn.Conv2d(c, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.ReLU()))
    if name == "pruning":
        if "keep" not in p:
            return layers.SoftChannelMask(channels, spatial), None
        keep = list(p["keep"])
        head = layers.ChannelScale(len(keep), spatial)
        if not slice_producer(block, keep):  # no prunable conv right before the cut: send the subset
            head = nn.Sequential(layers.ChannelSelect(keep), head)
        return head, layers.ChannelScatter(keep, channels, spatial)
    if name == "normalize":
        return layers.FeatureStandardize(spatial=spatial), None
    if name == "fft-entropy":
        if not spatial:
            raise DefenseError("fft-entropy needs C x H x W features: cut earlier")
        return layers.SpectralWhitening(shape[1], shape[2], p["alpha"]), None
    if name in ("adversarial", "lipschitz"):
        return nn.Identity(), None  # a training objective only: the head's weights carry the defense
    raise DefenseError(f"defense {name} has no modules")  # registry and this function disagree


def _count(ratio: float, channels: int, name: str) -> int:
    if not 0 < ratio <= 1:
        raise DefenseError(f"{name}: ratio must be in (0, 1], got {ratio}")
    return max(1, round(ratio * channels))


def slice_producer(block: nn.Module, keep: list[int]) -> bool:
    """Remove the dropped output channels from the last conv of `block` (and the channel-wise layers after
    it) in place, so the head computes only what it sends; False when the block has no such structure."""
    children = list(block.children()) if isinstance(block, nn.Sequential) else []
    convs = [i for i, m in enumerate(children) if isinstance(m, nn.Conv2d)]
    if not convs or not all(isinstance(m, CHANNELWISE) for m in children[convs[-1] + 1:]):
        return False
    conv = children[convs[-1]]
    if conv.groups != 1:
        return False
    index = torch.tensor(keep, dtype=torch.long)
    with torch.no_grad():
        conv.weight = nn.Parameter(conv.weight[index].clone())
        if conv.bias is not None:
            conv.bias = nn.Parameter(conv.bias[index].clone())
    conv.out_channels = len(keep)
    for m in children[convs[-1] + 1:]:
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight = nn.Parameter(m.weight[index].clone())
                m.bias = nn.Parameter(m.bias[index].clone())
                m.running_mean = m.running_mean[index].clone()
                m.running_var = m.running_var[index].clone()
            m.num_features = len(keep)
        elif isinstance(m, nn.PReLU) and m.num_parameters > 1:
            with torch.no_grad():
                m.weight = nn.Parameter(m.weight[index].clone())
            m.num_parameters = len(keep)
    return True
