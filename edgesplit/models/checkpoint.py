"""Checkpoints: a plain dict (spec, state_dict, metrics) saved with torch.save, loaded with weights_only=True.

A bare state_dict saved by other code loads too; a file that is not a checkpoint, or one made for
another architecture, is refused with a message that says which.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgesplit.errors import ModelError
from edgesplit.models.registry import ModelSpec

FORMAT = "edgesplit-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    path: str
    spec: ModelSpec | None  # None for a bare state_dict
    state_dict: dict
    metrics: dict

    def load_into(self, model: nn.Module, name: str) -> None:
        missing, unexpected, mismatched = _compare(model.state_dict(), self.state_dict)
        if missing or unexpected or mismatched:
            detail = "; ".join(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                               for label, keys in (("missing", missing), ("unexpected", unexpected),
                                                   ("wrong shape", mismatched)) if keys)
            raise ModelError(f"checkpoint {self.path} does not fit model {name!r} ({detail}): "
                             f"was it saved for another architecture or other --num-classes/--input?")
        model.load_state_dict(self.state_dict)


def save_checkpoint(model: nn.Module, path: str | os.PathLike, metrics: dict | None = None) -> Path:
    """Write `model`'s weights with its spec (from `create_model`) atomically to `path`."""
    spec = getattr(model, "edgesplit_spec", None)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec.to_dict() if spec is not None else None,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metrics": dict(metrics or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint safely (`weights_only=True`: no code from the file ever runs)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist: pass the .pt file written by 'edgesplit train'")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"checkpoint {path} cannot be read as a weights-only torch file ({first}); "
                         f"it may be corrupt or contain code: re-save it with torch.save(model.state_dict())") from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj.get("version") != VERSION:
            raise ModelError(f"checkpoint {path} has format version {obj.get('version')}, this edgesplit reads "
                             f"{VERSION}: re-train or convert it")
        spec = ModelSpec.from_dict(obj["spec"]) if obj.get("spec") else None
        return Checkpoint(str(path), spec, dict(obj["state_dict"]), dict(obj.get("metrics") or {}))
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return Checkpoint(str(path), None, dict(obj), {})
    raise ModelError(f"{path} is not a checkpoint (neither an edgesplit checkpoint nor a state_dict of tensors)")


def _compare(expected: dict, given: dict) -> tuple[list[str], list[str], list[str]]:
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    mismatched = [k for k in expected if k in given and tuple(expected[k].shape) != tuple(given[k].shape)]
    return missing, unexpected, mismatched
