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

from edgesplit.atomic import atomic_path
from edgesplit.errors import BackendError
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
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), dtype=np.uint8)
        with atomic_path(path, suffix=".npz") as tmp:  # unique per writer; removed if the save fails
            np.savez(tmp, features=self.features, ids=self.ids.astype(np.int64), meta=meta)
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
    """Read and check a FeatureFile (ids unique and aligned with features, wire dtype as declared)."""
    path = Path(path)
    if not path.is_file():
        raise BackendError(f"feature file {path} does not exist: create it with 'edgesplit emit'")
    try:
        with np.load(path, allow_pickle=False) as z:
            features, ids, meta_bytes = z["features"], z["ids"], z["meta"]
        meta = json.loads(meta_bytes.tobytes().decode())
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackendError(f"{path} is not a readable edgesplit feature file ({type(exc).__name__}): "
                           f"re-emit it with 'edgesplit emit'") from None
    if meta.get("schema") != SCHEMA or meta.get("schema_version") != SCHEMA_VERSION:
        raise BackendError(f"{path} is not an edgesplit feature file of schema version {SCHEMA_VERSION}")
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
