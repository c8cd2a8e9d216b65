"""Decoder registry: inversion networks sized from (feature shape, image shape), as `timm.create_model` does.

    list_decoders() -> ["attention", "deconv", "nonoverlap", "resnet", "upsample"]
    create_decoder("upsample", feature_shape=(128, 8, 8), image_shape=(1, 32, 32))

Spatial features are upsampled by 2x stages (log2 of the side ratio), with a final resize when the ratio is
not a power of two; vector features (after pooling or a linear layer) are first projected to a 4x4 map.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgesplit.errors import AttackError
from edgesplit.registry import Registry

MAX_UPSAMPLING = 6  # 64x: beyond this no decoder here is meaningful


@dataclass(frozen=True)
class Plan:
    in_channels: int
    in_side: int
    stages: int  # number of 2x upsamplings
    out_channels: int
    out_side: int
    vector: bool


def plan(feature_shape: tuple[int, ...], image_shape: tuple[int, int, int]) -> Plan:
    """How to go from features to the image; AttackError when the image cannot be reached."""
    if len(image_shape) != 3 or image_shape[0] not in (1, 3) or image_shape[1] != image_shape[2] or image_shape[1] < 8:
        raise AttackError(f"image shape {tuple(image_shape)} cannot be reconstructed: decoders produce square "
                          f"1- or 3-channel images of at least 8 px")
    c, side = image_shape[0], image_shape[1]
    if len(feature_shape) == 1:
        stages = max(0, int(math.log2(side / 4)))
        return Plan(feature_shape[0], 4, stages, c, side, True)
    if len(feature_shape) != 3:
        raise AttackError(f"feature shape {tuple(feature_shape)} is neither a vector nor C x H x W")
    fc, fh, fw = feature_shape
    ratio = side / max(fh, fw)
    stages = max(0, round(math.log2(ratio))) if ratio >= 1 else 0
    if stages > MAX_UPSAMPLING:
        raise AttackError(f"features of {fh}x{fw} cannot reasonably be decoded to {side}x{side} (a {ratio:.0f}x "
                          f"upsampling): audit at a smaller image size or an earlier cut")
    return Plan(fc, max(fh, fw), stages, c, side, False)


ACTIVATIONS = {"relu": lambda ch: nn.ReLU(inplace=True), "prelu": nn.PReLU, "tanh": lambda ch: nn.Tanh(),
               "hardswish": lambda ch: nn.Hardswish(inplace=True)}
OUTPUTS = ("sigmoid", "tanh")


def _bn_relu(ch: int, act: str = "relu") -> list[nn.Module]:
    if act not in ACTIVATIONS:
        raise AttackError(f"unknown decoder activation {act!r}: use one of {', '.join(ACTIVATIONS)}")
    return [nn.BatchNorm2d(ch), ACTIVATIONS[act](ch)]


class _Decoder(nn.Module):
    """Common frame: stem (vector projection or conv) -> body -> 1x1/3x3 to image channels -> output -> resize.

    `stem=False` feeds spatial features straight into the body (the seeds' layouts: `width` is then the
    feature channel count); `output` "tanh" maps tanh to [0, 1] as (tanh + 1) / 2 (the seeds that train on
    [-1, 1] images), "sigmoid" is the default. Every decoder returns images in [0, 1].
    """

    def __init__(self, p: Plan, width: int, act: str = "relu", output: str = "sigmoid", stem: bool = True) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise AttackError(f"unknown decoder output {output!r}: use one of {', '.join(OUTPUTS)}")
        self.plan, self.output = p, output
        if p.vector:
            self.project = nn.Linear(p.in_channels, width * 16)
            self.stem = nn.Sequential(*_bn_relu(width, act))
        else:
            self.project = None
            self.stem = (nn.Sequential(nn.Conv2d(p.in_channels, width, 3, 1, 1), *_bn_relu(width, act)) if stem
                         else nn.Identity())
        self.width = width

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.project is not None:
            z = self.project(z.flatten(1)).view(len(z), self.width, 4, 4)
        x = self.head(self.body(self.stem(z)))
        if x.shape[-1] != self.plan.out_side:
            x = F.interpolate(x, size=(self.plan.out_side, self.plan.out_side), mode="bilinear", align_corners=False)
        return (torch.tanh(x) + 1) / 2 if self.output == "tanh" else torch.sigmoid(x)


def _start_width(p: Plan, width: int | None, default_cap: int, stem: bool) -> int:
    if not stem and not p.vector:
        return p.in_channels  # no stem: the body starts from the feature channels themselves
    return width or min(default_cap, max(64, p.in_channels))


class DeconvDecoder(_Decoder):
    """Transposed convolutions (k4, s2) halving the channels each stage (Golden Partition Zone's Inversion_4,
    efficient-split-dnn-privacy's five-stage decoder). Spatial features go straight into the first transposed
    conv, as in the seeds (`stem=True` adds a 3x3 conv first: more parameters, and 1-3 dB weaker at deep cuts
    on the embedded digits). `refine` 3x3 conv-BN-activation layers at the output resolution follow the last
    stage (default 1: +2 dB at the first cut of classifier4 on the digits; the seeds' layouts use 0);
    `min_width` / `max_width` bound the channels of each stage."""

    def __init__(self, p: Plan, width: int | None = None, act: str = "relu", output: str = "sigmoid",
                 stem: bool = False, max_width: int | None = None, min_width: int = 32, refine: int = 1) -> None:
        width = _start_width(p, width, 512, stem)
        super().__init__(p, width, act, output, stem)
        layers, ch = [], width
        for _ in range(p.stages):
            out = max(min_width, ch // 2) if max_width is None else min(max_width, max(min_width, ch // 2))
            layers += [nn.ConvTranspose2d(ch, out, 4, 2, 1), *_bn_relu(out, act)]
            ch = out
        for _ in range(refine):
            layers += [nn.Conv2d(ch, ch, 3, 1, 1), *_bn_relu(ch, act)]
        self.body = (nn.Sequential(*layers) if layers
                     else nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), *_bn_relu(ch, act)))
        self.head = nn.Conv2d(ch, p.out_channels, 3, 1, 1)


DEPTHS = {"light": (4, 0), "medium": (2, 0), "deep": (2, 1)}  # (upsampling factor per stage, extra convs)


class NonOverlapDecoder(_Decoder):
    """The reconstruction seed's decoders: non-overlapping transposed convs (kernel = stride) with BN +
    hard-swish. `depth`: light (4x stages, where the ratio allows), medium (2x stages), deep (2x stages, each
    followed by a 3x3 conv-BN-hard-swish)."""

    def __init__(self, p: Plan, depth: str = "medium", width: int | None = None, act: str = "hardswish",
                 output: str = "sigmoid", stem: bool = False) -> None:
        if depth not in DEPTHS:
            raise AttackError(f"unknown depth {depth!r}: use one of {', '.join(DEPTHS)}")
        width = _start_width(p, width, 512, stem)
        super().__init__(p, width, act, output, stem)
        factor, extra = DEPTHS[depth]
        layers, ch, left = [], width, p.stages  # left: remaining 2x upsamplings
        while left > 0:
            step = 2 if left == 1 or factor == 2 else 4
            out = max(32, ch // step)
            layers += [nn.ConvTranspose2d(ch, out, step, step), *_bn_relu(out, act)]
            for _ in range(extra):
                layers += [nn.Conv2d(out, out, 3, 1, 1), *_bn_relu(out, act)]
            ch, left = out, left - (1 if step == 2 else 2)
        self.body = (nn.Sequential(*layers) if layers
                     else nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), *_bn_relu(ch, act)))
        self.head = nn.Conv2d(ch, p.out_channels, 1)


class UpsampleDecoder(_Decoder):
    """Bicubic 2x upsampling followed by two conv-BN-activation per stage (the reconstruction seed's better
    variant)."""

    def __init__(self, p: Plan, width: int | None = None, act: str = "relu", output: str = "sigmoid",
                 stem: bool = True) -> None:
        width = _start_width(p, width, 256, stem)
        super().__init__(p, width, act, output, stem)
        layers, ch = [], width
        for _ in range(max(1, p.stages)):
            out = max(32, ch // 2)
            if p.stages:
                layers.append(nn.Upsample(scale_factor=2, mode="bicubic", align_corners=False))
            layers += [nn.Conv2d(ch, out, 3, 1, 1), *_bn_relu(out, act), nn.Conv2d(out, out, 3, 1, 1),
                       *_bn_relu(out, act)]
            ch = out
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, p.out_channels, 3, 1, 1)


class PreActBlock(nn.Module):
    """Pre-activation residual block (BN-ReLU-conv x2 + identity)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_bn_relu(ch), nn.Conv2d(ch, ch, 3, 1, 1), *_bn_relu(ch), nn.Conv2d(ch, ch, 3, 1, 1))

    def forward(self, x):
        return x + self.body(x)


class ResNetDecoder(_Decoder):
    """CEM's `res_normN8C64`: 64 channels, N pre-activation residual blocks, one transposed conv + BN + ReLU per
    2x upsampling (InversionResNet-style)."""

    def __init__(self, p: Plan, width: int = 64, blocks: int = 8) -> None:
        super().__init__(p, width)
        layers: list[nn.Module] = [PreActBlock(width) for _ in range(blocks)]
        for _ in range(p.stages):
            layers += [nn.ConvTranspose2d(width, width, 3, 2, 1, output_padding=1), *_bn_relu(width)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(PreActBlock(width), nn.Conv2d(width, p.out_channels, 3, 1, 1))


class Attention(nn.Module):
    """Channel then spatial attention (CBAM): re-weights feature maps and positions."""

    def __init__(self, ch: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(4, ch // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(ch, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, ch, 1))
        self.spatial = nn.Conv2d(2, 1, 7, 1, 3)

    def forward(self, x):
        x = x * torch.sigmoid(self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1)))
        s = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(s))


class AttentionBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.res, self.att = PreActBlock(ch), Attention(ch)

    def forward(self, x):
        return x + self.att(self.res(x))


class AttentionDecoder(_Decoder):
    """Residual blocks with channel+spatial attention at every resolution (GPZ's enhanced inversion capacity)."""

    def __init__(self, p: Plan, width: int = 96, blocks: int = 2) -> None:
        super().__init__(p, width)
        layers: list[nn.Module] = [AttentionBlock(width) for _ in range(blocks)]
        for _ in range(p.stages):
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(width, width, 3, 1, 1), *_bn_relu(width), AttentionBlock(width)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, p.out_channels, 3, 1, 1)


@dataclass(frozen=True)
class DecoderEntry:
    name: str
    factory: Callable[..., nn.Module]
    description: str
    worst_case: bool = False  # one of the families the audit trains by default (decoders="auto")


DECODERS: Registry[DecoderEntry] = Registry("decoder", AttackError)
for _entry in [
    DecoderEntry("deconv", DeconvDecoder, "transposed convs k4 s2 halving channels (GPZ Inversion_4)", worst_case=True),
    DecoderEntry("upsample", UpsampleDecoder, "bicubic 2x upsampling + conv-BN-ReLU pairs"),
    DecoderEntry("nonoverlap", NonOverlapDecoder, "transposed convs with kernel = stride, BN + hard-swish; depth "
                 "light|medium|deep (reconstruction seed)", worst_case=True),
    DecoderEntry("resnet", ResNetDecoder, "64-ch pre-activation residual decoder (CEM res_normN8C64)"),
    DecoderEntry("attention", AttentionDecoder, "residual blocks with channel+spatial attention"),
]:
    DECODERS.add(_entry.name, _entry)


def list_decoders() -> list[str]:
    return DECODERS.names(sort=True)


def decoder_entries() -> list[DecoderEntry]:
    return DECODERS.entries(sort=True)


AUTO = "auto"


def resolve_families(names) -> tuple[str, ...]:
    """Decoder families from a list of names, "auto" (the audit's default worst case) or "all"."""
    names = [names] if isinstance(names, str) else list(names)
    out: list[str] = []
    for name in names:
        if name == AUTO:
            out += [e.name for e in decoder_entries() if e.worst_case]
        elif name == "all":
            out += list_decoders()
        elif name in DECODERS:
            out.append(name)
        else:
            raise DECODERS.unknown(name, [AUTO, "all", *list_decoders()])
    if not out:
        raise AttackError("no decoder named: give one or more of " + ", ".join([AUTO, "all", *list_decoders()]))
    return tuple(dict.fromkeys(out))


def create_decoder(name: str, feature_shape: tuple[int, ...], image_shape: tuple[int, int, int], **kwargs) -> nn.Module:
    """A decoder mapping features of `feature_shape` to images of `image_shape` (values in [0, 1])."""
    if name not in DECODERS:
        raise DECODERS.unknown(name, list_decoders())
    try:
        decoder = DECODERS.get(name).factory(plan(tuple(feature_shape), tuple(image_shape)), **kwargs)
    except TypeError as exc:
        raise AttackError(f"decoder {name!r} does not take these options ({exc})") from None
    decoder.edgesplit_decoder = {"name": name, "feature_shape": list(feature_shape), "image_shape": list(image_shape),
                                 "kwargs": kwargs}
    return decoder
