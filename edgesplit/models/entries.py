"""The zoo's names: `MODELS` (name -> `ModelEntry`) and `@register_model`, which the zoo modules use.

A leaf of `models` so the zoo can register into it without importing the registry that loads the zoo:
`registry.py` gives `MODELS` its filler (import the zoo), run on the first read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgesplit.errors import ModelError
from edgesplit.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable  # fn(num_classes, in_chans, img_size, **kwargs) -> nn.Module
    description: str
    source: str


MODELS: Registry[ModelEntry] = Registry(
    "model", ModelError, hint="'edgesplit models' lists the zoo, and any torchvision classifier name works too")


def register_model(*, description: str, source: str = "edgesplit") -> Callable:
    """Decorator: register `fn(num_classes, in_chans, img_size, **kwargs) -> nn.Module` under its name."""

    def wrap(fn: Callable) -> Callable:
        MODELS.add(fn.__name__, ModelEntry(fn.__name__, fn, description, source))
        return fn

    return wrap
