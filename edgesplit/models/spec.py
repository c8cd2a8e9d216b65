"""`ModelSpec`: what a model was built as (name, classes, channels, input size, options).

A leaf of `models`: checkpoints, the registry and bundle manifests all read it, so it imports nothing of them.
"""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass, field

from edgesplit.errors import ModelError


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
