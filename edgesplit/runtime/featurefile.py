"""FeatureFile: what a device emitted — wire payload bytes, the sample ids, and where they came from.

An `.npz` with `features` (the wire dtype, exactly as sent), `ids` (int64 indices into the named data split's
pool) and `meta` (UTF-8 JSON as uint8: no pickles, loaded with allow_pickle=False). Torch-free.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesplit.atomic import atomic_path, probe_writable
from edgesplit.errors import BackendError, BundleError
from edgesplit.export.wire import WireFormat

SCHEMA = "edgesplit.features"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FeatureFile:
    features: np.ndarray
    ids: np.ndarray
    meta: dict

    @property
    def wire(self) -> WireFormat:
        return WireFormat.from_dict(self.meta["wire"])

    def decoded(self) -> np.ndarray:
        """float32 features, dequantized exactly as the manifest's scale/zero-point say."""
        return self.wire.decode(self.features)

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: a failed write (a full disk) leaves the old file as it was and no temporary file."""
        path = Path(path)
        meta = np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), dtype=np.uint8)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, suffix=".npz") as tmp:  # unique per writer; removed if the save fails
                np.savez(tmp, features=self.features, ids=self.ids.astype(np.int64), meta=meta)
        except OSError as exc:
            raise BackendError(f"could not write {path} ({exc.strerror or exc}): free some space or choose "
                               f"another --out (nothing was written)") from None
        return path


def check_feature_path(path: str | os.PathLike, force: bool = False) -> Path:
    """Where a FeatureFile may be written: a `.npz` name (numpy would add the suffix itself) that is not an
    existing file unless `force`: a bundle's head.onnx or a results file is never overwritten by mistake."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise BackendError(f"feature file {path} must end in .npz: pass e.g. --out {path.with_suffix('.npz')}")
    if path.is_dir():
        raise BackendError(f"{path} is a folder: pass a .npz file name with --out")
    if path.exists() and not force:
        raise BackendError(f"{path} already exists: pass --force to replace it, or choose another --out")
    try:
        probe_writable(path.parent)  # before the features are computed, not after
    except OSError as exc:
        raise BackendError(f"cannot write in {path.parent} ({exc.strerror or exc}): choose a writable --out, "
                           f"or fix the folder's permissions") from None
    return path


def make_meta(bundle, backend_info: dict, data: dict, device: dict, count: int) -> dict:
    m = bundle.manifest
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "bundle": bundle.path.name, "bundle_sha256": bundle.sha256,
        "model": m["model"]["name"], "cut": m["cut"]["name"], "precision": m["precision"],
        "weights": m["model"].get("checkpoint_sha256") or m["model"].get("weights"),
        "wire": m["wire"], "output_shape": m["output"]["shape"], "count": count,
        "data": data, "backend": backend_info, "device": device,
    }


def load_features(path: str | os.PathLike) -> FeatureFile:
    """Read and check a FeatureFile: its meta record, at least one row, ids unique and aligned with the
    features, the wire dtype and feature shape as declared. Anything else is one BackendError line."""
    path = Path(path)
    if not path.is_file():
        raise BackendError(f"feature file {path} does not exist: create it with 'edgesplit emit'")
    features, ids, meta = _read_arrays(path)
    _check_meta(path, meta)
    if features.ndim < 1 or ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise BackendError(f"{path}: features {features.shape} with ids {ids.dtype} {ids.shape} are not rows with "
                           f"integer ids: the file is corrupt, re-emit it")
    if len(features) == 0:
        raise BackendError(f"{path} holds no samples (zero rows): re-emit it from a non-empty split "
                           f"(check --split and --limit)")
    if len(ids) != len(features) or len(np.unique(ids)) != len(ids):
        raise BackendError(f"{path}: {len(features)} feature rows but {len(ids)} ids (or duplicate ids): "
                           f"the file is corrupt, re-emit it")
    wire = WireFormat.from_dict(meta["wire"])
    if features.dtype != wire.numpy_dtype:
        raise BackendError(f"{path}: features are {features.dtype} but the wire format says {wire.dtype}")
    if tuple(features.shape[1:]) != tuple(meta["output_shape"][1:]):
        raise BackendError(f"{path}: features have shape {features.shape[1:]}, the bundle emits "
                           f"{tuple(meta['output_shape'][1:])}")
    return FeatureFile(features, ids.astype(np.int64), meta)


def _read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, object]:
    """features, ids and the decoded meta JSON of an .npz (no pickles)."""
    unreadable = f"{path} is not a readable edgesplit feature file"
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("features", "ids", "meta") if k not in z.files]
            if missing:
                raise BackendError(f"{unreadable}: it has no {' or '.join(missing)} array; re-emit it with "
                                   f"'edgesplit emit'")
            features, ids, meta_bytes = z["features"], z["ids"], z["meta"]
        return features, ids, json.loads(meta_bytes.tobytes().decode())
    except (KeyError, ValueError, TypeError, AttributeError, OSError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError) as exc:  # a bare .npy (no context manager, no .files), a bad zip, bad JSON
        raise BackendError(f"{unreadable} ({type(exc).__name__}): re-emit it with 'edgesplit emit'") from None


_DATA_FIELDS = {"name": str, "split": str, "seed": int}


def _check_meta(path: Path, meta) -> None:
    """The meta record names its schema, wire, output shape, bundle and data split, each of the right type."""
    fix = "the file is corrupt or not from 'edgesplit emit'; re-emit it"
    if not isinstance(meta, dict):
        raise BackendError(f"{path}: its meta record is a JSON {type(meta).__name__}, not an object: {fix}")
    if meta.get("schema") != SCHEMA or meta.get("schema_version") != SCHEMA_VERSION:
        raise BackendError(f"{path} is not an edgesplit feature file of schema version {SCHEMA_VERSION}")
    for key, kind in (("wire", dict), ("output_shape", list), ("data", dict), ("bundle_sha256", str)):
        if not isinstance(meta.get(key), kind):
            what = "missing" if key not in meta else f"a {type(meta[key]).__name__}, not a {kind.__name__}"
            raise BackendError(f"{path}: meta field {key!r} is {what}: {fix}")
    for key, kind in _DATA_FIELDS.items():
        value = meta["data"].get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise BackendError(f"{path}: meta field data.{key} is missing or not a {kind.__name__}: {fix}")
    if not isinstance(meta["data"].get("options", {}), dict):
        raise BackendError(f"{path}: meta field data.options is not an object: {fix}")
    try:
        WireFormat.from_dict(meta["wire"])
    except BundleError as exc:
        raise BackendError(f"{path}: meta field 'wire' is unusable ({exc}): {fix}") from None
