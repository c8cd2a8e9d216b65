"""Emitted features are the exact wire bytes: equal to an independent onnxruntime run, aligned with the ids."""

import numpy as np
import onnxruntime as ort

from edgesplit.data import load_dataset
from edgesplit.runtime.emit import emit_split


def test_emitted_bytes_equal_an_independent_onnxruntime_run(bundles):
    bundle = bundles["c4"]
    ff = emit_split(bundle.path, "digits", "attack", limit=50)
    ds = load_dataset("digits", split="attack", img_size=32, channels=1, limit=50)
    assert np.array_equal(ff.ids, ds.ids), "ids aligned to the data split, in order"
    images, _ = ds.tensors()
    session = ort.InferenceSession(str(bundle.onnx_path), providers=["CPUExecutionProvider"])
    independent = session.run(None, {"input": images.numpy()})[0]
    assert ff.features.dtype == independent.dtype == np.uint8
    assert ff.features.tobytes() == independent.tobytes(), "bit-identical wire bytes"
    assert ff.meta["bundle_sha256"] == bundle.sha256 and ff.meta["data"]["split"] == "attack"
    assert ff.meta["backend"]["backend"] == "ort" and ff.meta["device"]["kind"]
