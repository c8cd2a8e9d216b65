"""The model registry: `@register_model` on a builder, `create_model(name, ...)`, `list_models()`.

Names not registered here fall back to torchvision's classification builders (always with
`weights=None`: edgesplit never downloads weights), adapted to `in_chans` and small inputs.
"""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from torch import nn

from edgesplit.errors import ModelError
from edgesplit.progress import Progress
from edgesplit.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """What a model was built as; stored in checkpoints and (later) in bundle manifests."""

    name: str
    num_classes: int = 10
    in_chans: int = 3
    img_size: int = 32
    kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ModelError(f"model name must be a non-empty string, got {self.name!r}")
        for key in ("num_classes", "in_chans", "img_size"):
            value = getattr(self, key)
            try:
                if isinstance(value, bool):
                    raise TypeError
                object.__setattr__(self, key, operator.index(value))  # numpy integers become plain ints
            except TypeError:
                raise ModelError(f"{key} must be an integer, got {value!r}") from None
        if not isinstance(self.kwargs, dict):
            raise ModelError(f"model options (kwargs) must be a mapping, got {type(self.kwargs).__name__}")
        if self.num_classes < 1:
            raise ModelError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.in_chans < 1:
            raise ModelError(f"in_chans must be >= 1, got {self.in_chans}")
        if self.img_size < 8:
            raise ModelError(f"img_size must be >= 8 pixels, got {self.img_size}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        if "name" not in d:
            raise ModelError("a model spec needs a 'name'")
        kwargs = d.get("kwargs") or {}
        return cls(**{k: d[k] for k in ("name", "num_classes", "in_chans", "img_size") if k in d},
                   kwargs=dict(kwargs) if isinstance(kwargs, dict) else kwargs)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    source: str


def _load_zoo() -> None:
    # The zoo modules register themselves on import.
    from edgesplit.models import zoo  # noqa: F401


MODELS: Registry[ModelEntry] = Registry(
    "model", ModelError, hint="'edgesplit models' lists the zoo, and any torchvision classifier name works too",
    load=_load_zoo)


def register_model(*, description: str, source: str = "edgesplit") -> Callable:
    """Decorator: register `fn(num_classes, in_chans, img_size, **kwargs) -> nn.Module` under its name."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.add(fn.__name__, ModelEntry(fn.__name__, fn, description, source))
        return fn

    return wrap


def model_entries() -> list[ModelEntry]:
    return MODELS.entries(sort=True)


def list_models(pattern: str | None = None, include_torchvision: bool = False) -> list[str]:
    """Registered model names (optionally matching a glob), plus torchvision's classifiers if asked."""
    names = set(MODELS.names())
    if include_torchvision:
        names |= set(torchvision_classifiers())
    out = sorted(names)
    return [n for n in out if fnmatch.fnmatch(n, pattern)] if pattern else out


def torchvision_classifiers() -> list[str]:
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def create_model(
    name: str,
    num_classes: int | None = None,
    in_chans: int | None = None,
    img_size: int | None = None,
    checkpoint: str | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    **kwargs,
) -> nn.Module:
    """Build a zoo model (or any torchvision classifier) in eval mode, optionally loading a checkpoint.

    Arguments left as None take the checkpoint's values when one is given, else 10 classes,
    3 channels, 32 pixels. `seed` makes the random initialisation reproducible (without touching the
    global RNG). A model whose weights, or whose activations for one input, cannot fit in the memory
    available is refused before anything is allocated. Notes (a checkpoint without a digest) go to
    `progress`. The returned model carries its `ModelSpec` as `model.edgesplit_spec`.
    """
    from edgesplit.models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint, progress) if checkpoint is not None else None
    if ckpt is not None and ckpt.spec is not None:
        saved = ckpt.spec
        if saved.name != name:
            raise ModelError(
                f"checkpoint {checkpoint} was saved for model {saved.name!r}, not {name!r}: "
                f"use model {saved.name!r} or a checkpoint of {name!r}"
            )
        for key, given in (("num_classes", num_classes), ("in_chans", in_chans), ("img_size", img_size)):
            if given is not None and given != getattr(saved, key):
                raise ModelError(
                    f"checkpoint {checkpoint} has {key}={getattr(saved, key)}, but {key}={given} was asked: "
                    f"drop the option or pass {getattr(saved, key)}"
                )
        num_classes, in_chans, img_size = saved.num_classes, saved.in_chans, saved.img_size
        kwargs = {**saved.kwargs, **kwargs}
    spec = ModelSpec(name, 10 if num_classes is None else num_classes, 3 if in_chans is None else in_chans,
                     32 if img_size is None else img_size, dict(kwargs))
    model = _build_within_memory(spec, seed)
    if ckpt is not None:
        ckpt.load_into(model, name)
    model.edgesplit_spec = spec
    return model.eval()


def _build_within_memory(spec: ModelSpec, seed: int | None) -> nn.Module:
    """`build(spec)` (seeded when asked), refused with the sizes when it cannot fit in memory."""
    import torch

    from edgesplit.models.memory import allocation_advice, check_fits, footprint

    shape = f"{spec.in_chans}x{spec.img_size}x{spec.img_size}"
    what = f"model {spec.name!r} with {spec.num_classes} classes at {shape}"
    needs = footprint(lambda: build(spec), (spec.in_chans, spec.img_size, spec.img_size))
    by_weights = needs is not None and needs.weights >= needs.total - needs.weights
    fix = ("use fewer --num-classes or a smaller --input" if by_weights
           else "use a smaller --input (e.g. 3x224x224)")
    check_fits(what, needs, fix)
    with allocation_advice(f"building {what}", "use fewer --num-classes or a smaller --input"):
        if seed is None:
            return build(spec)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build(spec)


def build(spec: ModelSpec) -> nn.Module:
    """Instantiate `spec` with fresh (random) weights."""
    kwargs = dict(spec.kwargs)
    options = {name: kwargs.pop(name) for name in list(kwargs) if name in MODEL_OPTIONS}
    model = _build(spec, kwargs)
    for name in MODEL_OPTIONS:  # in a fixed order: a defense goes after a bottleneck
        if options.get(name):
            module_name, _, function = MODEL_OPTIONS[name].partition(":")
            import importlib

            getattr(importlib.import_module(module_name), function)(model, spec, options[name])
    return model


# Options any model takes, applied after the architecture is built, and the function applying each
# (`fn(model, spec, value)`). They are part of the ModelSpec, so checkpoints and bundles rebuild them.
# Named here as strings so `models` imports none of them until a spec uses one.
MODEL_OPTIONS = {
    "bottleneck": "edgesplit.models.bottleneck:apply_option",  # CEM's channel bottleneck after a module
    "defense": "edgesplit.defenses.apply:apply_option",  # a defense inserted at a cut (edgesplit defend)
}


def _build(spec: ModelSpec, kwargs: dict) -> nn.Module:
    entry = MODELS.find(spec.name)
    try:
        if entry is not None:
            return entry.builder(spec.num_classes, spec.in_chans, spec.img_size, **kwargs)
        if spec.name in torchvision_classifiers():
            from edgesplit.models.adapt import torchvision_model

            return torchvision_model(spec.name, spec.num_classes, spec.in_chans, spec.img_size, **kwargs)
    except TypeError as exc:
        raise ModelError(f"model {spec.name!r} does not take these options ({exc}); "
                         f"use num_classes, in_chans, img_size") from None
    raise MODELS.unknown(spec.name, list_models(include_torchvision=True))
