"""Checkpoints: a plain dict (spec, state_dict, metrics, tensors_sha256) saved with torch.save, loaded with
weights_only=True.

`torch.load` does not check the zip archive's CRCs, so a few flipped bytes in a tensor would load silently
as other weights: edgesplit's checkpoints carry a sha256 of their tensors (names, dtypes, shapes and bytes,
in name order), verified on load. A bare state_dict saved by other code (no digest) loads too, with a note.
A file that is not a checkpoint, is malformed, is corrupt, or was made for another architecture is refused
with a message that says which.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgesplit.atomic import atomic_path
from edgesplit.errors import ModelError
from edgesplit.models.spec import ModelSpec
from edgesplit.progress import Progress, resolve

FORMAT = "edgesplit-checkpoint"
VERSION = 1
DIGEST_KEY = "tensors_sha256"  # added within version 1: older edgesplit checkpoints lack it and load with a note
RESAVE = "re-save it with 'edgesplit train' or edgesplit.models.save_checkpoint"


@dataclass
class Checkpoint:
    path: str
    spec: ModelSpec | None  # None for a bare state_dict
    state_dict: dict
    metrics: dict
    note: str | None = None  # why the weights could not be checked against a digest, when they could not

    def load_into(self, model: nn.Module, name: str) -> None:
        missing, unexpected, mismatched = _compare(model.state_dict(), self.state_dict)
        if missing or unexpected or mismatched:
            detail = "; ".join(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                               for label, keys in (("missing", missing), ("unexpected", unexpected),
                                                   ("wrong shape", mismatched)) if keys)
            raise ModelError(f"checkpoint {self.path} does not fit model {name!r} ({detail}): "
                             f"was it saved for another architecture or other --num-classes/--input?")
        model.load_state_dict(self.state_dict)


def tensors_sha256(state_dict: dict) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order (independent of file layout)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode() + b"\n")
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(model: nn.Module, path: str | os.PathLike, metrics: dict | None = None) -> Path:
    """Write `model`'s weights with its spec (from `create_model`) and their digest atomically to `path`."""
    spec = getattr(model, "edgesplit_spec", None)
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec.to_dict() if spec is not None else None,
        "state_dict": state_dict,
        "metrics": dict(metrics or {}),
        DIGEST_KEY: tensors_sha256(state_dict),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # a unique name: concurrent saves never collide
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, progress: Progress | None = None) -> Checkpoint:
    """Read a checkpoint safely (`weights_only=True`: no code from the file ever runs) and check its digest.

    A checkpoint without a digest (a bare state_dict, or one from an older edgesplit) is accepted: its
    `note` says so, and is reported through `progress`.
    """
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
        ckpt = _edgesplit_checkpoint(path, obj)
    elif isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in obj.items()):
        ckpt = Checkpoint(str(path), None, dict(obj), {},
                          note=f"checkpoint {path.name} is a bare state_dict without edgesplit's tensor digest: "
                               f"loaded without a corruption check")
    else:
        raise ModelError(f"{path} is not a checkpoint (neither an edgesplit checkpoint nor a state_dict of "
                         f"tensors{_keys_hint(obj)}): pass the model.pt written by 'edgesplit train'")
    if ckpt.note:
        resolve(progress).message(ckpt.note)
    return ckpt


def _edgesplit_checkpoint(path: Path, obj: dict) -> Checkpoint:
    if obj.get("version") != VERSION:
        raise ModelError(f"checkpoint {path} has format version {obj.get('version')}, this edgesplit reads "
                         f"{VERSION}: re-train or convert it")
    state_dict = _state_dict(path, obj)
    spec = _spec(path, obj.get("spec"))
    metrics = obj.get("metrics")
    if metrics is not None and not isinstance(metrics, dict):
        raise ModelError(f"checkpoint {path} is malformed: 'metrics' is a {type(metrics).__name__}, not a "
                         f"mapping; {RESAVE}")
    stored = obj.get(DIGEST_KEY)
    note = None
    if stored is None:
        note = (f"checkpoint {path.name} was written without a tensor digest (an older edgesplit): "
                f"loaded without a corruption check; {RESAVE} to add one")
    elif stored != tensors_sha256(state_dict):
        raise ModelError(f"checkpoint {path} is corrupt: its tensors no longer match the sha256 stored when it "
                         f"was saved; restore it from a copy or re-train")
    return Checkpoint(str(path), spec, state_dict, dict(metrics or {}), note)


def _state_dict(path: Path, obj: dict) -> dict:
    if "state_dict" not in obj:
        raise ModelError(f"checkpoint {path} is malformed: it has no 'state_dict'; {RESAVE}")
    state_dict = obj["state_dict"]
    if not isinstance(state_dict, dict):
        raise ModelError(f"checkpoint {path} is malformed: 'state_dict' is a {type(state_dict).__name__}, not a "
                         f"mapping of names to tensors; {RESAVE}")
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ModelError(f"checkpoint {path} is malformed: state_dict entry {key!r} is a "
                             f"{type(value).__name__}, not a tensor; {RESAVE}")
    return dict(state_dict)


def _spec(path: Path, spec) -> ModelSpec | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ModelError(f"checkpoint {path} is malformed: 'spec' is a {type(spec).__name__}, not a mapping "
                         f"with name, num_classes, in_chans and img_size; {RESAVE}")
    try:
        return ModelSpec.from_dict(spec)
    except ModelError as exc:
        raise ModelError(f"checkpoint {path} is malformed: its spec is invalid ({exc}); {RESAVE}") from None


def _keys_hint(obj) -> str:
    if isinstance(obj, dict) and obj:
        keys = [str(k) for k in list(obj)[:4]]
        return f"; it holds {', '.join(keys)}{' ...' if len(obj) > 4 else ''}"
    return f"; it holds a {type(obj).__name__}" if not isinstance(obj, dict) else "; it is empty"


def checkpoint_input_shape(path: str | os.PathLike) -> tuple[int, int, int] | None:
    """(C, H, W) the checkpoint's model was built for; None for a bare state_dict (which records no shape)."""
    spec = load_checkpoint(path).spec
    return None if spec is None else (spec.in_chans, spec.img_size, spec.img_size)


def _compare(expected: dict, given: dict) -> tuple[list[str], list[str], list[str]]:
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    mismatched = [k for k in expected if k in given and tuple(expected[k].shape) != tuple(given[k].shape)]
    return missing, unexpected, mismatched
