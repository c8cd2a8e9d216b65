"""The model registry: `@register_model` on a builder, `create_model(name, ...)`, `list_models()`.

The names live in `entries.MODELS`; the zoo registers into it when this module first reads it.

Names not registered here fall back to torchvision's classification builders (always with
`weights=None`: edgesplit never downloads weights), adapted to `in_chans` and small inputs.
"""

from __future__ import annotations

import fnmatch

from torch import nn

from edgesplit.errors import ModelError
from edgesplit.models.checkpoint import load_checkpoint
from edgesplit.models.entries import MODELS, ModelEntry, register_model  # noqa: F401 - re-exported
from edgesplit.models.options import apply_options, split_options
from edgesplit.models.spec import ModelSpec
from edgesplit.progress import Progress


def _load_zoo() -> None:
    # The zoo modules register themselves (into entries.MODELS) on import.
    from edgesplit.models import zoo  # noqa: F401


MODELS.on_first_use(_load_zoo)


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
    """Instantiate `spec` with fresh (random) weights, then apply its model options (see `options.py`)."""
    kwargs, options = split_options(spec.kwargs)
    return apply_options(_build(spec, kwargs), spec, options)


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
