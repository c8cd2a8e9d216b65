"""Feature emission: run a bundle over images and keep exactly what the device would send, with sample ids."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from edgesplit.errors import BackendError
from edgesplit.export.bundle import Bundle, load_bundle
from edgesplit.progress import Progress, resolve
from edgesplit.runners import fixed_batch, get_runner
from edgesplit.runtime.featurefile import FeatureFile, make_meta
from edgesplit.runtime.memory import check_batch_fits, check_batch_size, out_of_memory_advice


def emit_arrays(bundle: Bundle, images: np.ndarray, ids: np.ndarray, data: dict, backend: str = "ort",
                batch: int = 64, threads: int | None = None, checkpoint: str | None = None,
                progress: Progress | None = None) -> FeatureFile:
    """Run `bundle` over `images` (N x C x H x W in [0, 1]); features[i] is what sample ids[i] sends."""
    from edgesplit.devices.detect import detect_host

    if len(images) != len(ids):
        raise BackendError(f"{len(images)} images but {len(ids)} ids")
    if len(images) == 0:
        raise BackendError("nothing to emit: the data split is empty (check --split and --limit)")
    check_batch_size(batch)
    batch = fixed_batch(bundle) or batch
    check_batch_fits(bundle, min(batch, len(images)))
    chunks = []
    with get_runner(backend, threads, checkpoint=checkpoint) as runner, out_of_memory_advice(batch):
        runner.load(bundle)
        with resolve(progress).task(f"emitting {bundle.path.name}", total=len(images)) as task:
            for start in range(0, len(images), batch):
                chunks.append(runner.run(images[start: start + batch]))
                task.update(len(chunks[-1]))
        info = runner.info()
    features = np.concatenate(chunks)
    meta = make_meta(bundle, info, data, detect_host().to_dict(), len(features))
    return FeatureFile(features, np.asarray(ids, dtype=np.int64), meta)


def emit_split(bundle_path, data: str, split: str = "attack", limit: int | None = None, root: str | None = None,
               seed: int = 0, backend: str = "ort", batch: int = 64, threads: int | None = None,
               checkpoint: str | None = None, progress: Progress | None = None) -> FeatureFile:
    """Host side: load a named data split shaped for the bundle and emit its features (needs torch for data)."""
    bundle = load_bundle(bundle_path)
    images, ids, meta = split_inputs(bundle, data, split, limit, root, seed)
    return emit_arrays(bundle, images, ids, meta, backend, batch, threads, checkpoint, progress)


def split_inputs(bundle: Bundle, data: str, split: str, limit, root, seed) -> tuple[np.ndarray, np.ndarray, dict]:
    """Images of a data split at the bundle's input shape, their ids, and a record of which split it was."""
    from edgesplit.data.for_input import load_split_for

    ds = load_split_for(bundle.input["shape"][1:], data, root=root, split=split, seed=seed, limit=limit)
    images, _labels = ds.tensors()
    ids = np.asarray(ds.ids, dtype=np.int64)
    info = ds.info
    meta = {"name": info.name, "split": split, "seed": seed, "img_size": info.img_size, "channels": info.channels,
            "size": len(ids), "limit": limit, "options": info.options,
            "ids_sha256": hashlib.sha256(ids.tobytes()).hexdigest()}
    return images.numpy().astype(np.float32), ids, meta


def save_inputs(path: str | os.PathLike, images: np.ndarray, ids: np.ndarray, data: dict) -> Path:
    """Inputs for an on-device emit (images, ids, data record), as a pickle-free .npz."""
    path = Path(path)
    meta = np.frombuffer(json.dumps(data).encode(), dtype=np.uint8)
    np.savez(path, images=images.astype(np.float32), ids=ids.astype(np.int64), meta=meta)
    return path


def load_inputs(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    with np.load(path, allow_pickle=False) as z:
        return z["images"], z["ids"], json.loads(z["meta"].tobytes().decode())
