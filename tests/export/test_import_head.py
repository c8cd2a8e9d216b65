"""Heads edgesplit did not make: a plain torch.onnx.export model is wrapped, emitted and profiled; weights
in an external data file are folded in (or, too big to fold, hashed beside it) and may not point outside
the model's folder."""

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgesplit.errors import BackendError, BundleError, ExportError
from edgesplit.export import import_head, verify_bundle
from edgesplit.export.bundle import load_bundle
from edgesplit.export.import_head import bundle_from_onnx
from edgesplit.runtime import TimingConfig
from edgesplit.runtime.emit import emit_arrays, emit_split
from edgesplit.runtime.profile import profile_bundle
from tests.export.helpers import tiny_head


def _graph(inputs, outputs, nodes):
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs),
                             opset_imports=[helper.make_opsetid("", 18)])


def reference_output(onnx_path, images):
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"x": images})[0]


def test_wrapped_head_emits_and_profiles_with_its_fixed_batch(plain_onnx, tmp_path):
    bundle = bundle_from_onnx(plain_onnx, tmp_path / "b")
    assert bundle.manifest["input"]["shape"] == [1, 1, 32, 32] and bundle.manifest["wire"]["format"] == "fp32"
    ff = emit_split(bundle.path, "digits", "test", limit=10)
    assert ff.features.shape == (10, 16, 16, 16)
    (row,) = profile_bundle(bundle.path, "ort", [1], TimingConfig(warmup=1, iters=3, min_seconds=0))
    assert row["model"] == "external:head"
    with pytest.raises(BackendError, match="takes batches of exactly 1"):
        profile_bundle(bundle.path, "ort", [4], TimingConfig(warmup=1, iters=3, min_seconds=0))


def test_heads_that_cannot_be_wrapped(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 8, 8])
    two = _graph([x, helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 1, 8, 8])], [y],
                 [helper.make_node("Add", ["x", "x2"], ["y"])])
    onnx.save(two, tmp_path / "two.onnx")
    with pytest.raises(ExportError, match="2 inputs and 1 outputs"):
        bundle_from_onnx(tmp_path / "two.onnx", tmp_path / "b1")
    q = _graph([x], [helper.make_tensor_value_info("q", TensorProto.UINT8, [1, 1, 8, 8])],
               [helper.make_node("QuantizeLinear", ["x", "s"], ["q"])])
    q.graph.initializer.append(onnx.numpy_helper.from_array(np.array(0.1, np.float32), "s"))
    onnx.save(q, tmp_path / "q.onnx")
    with pytest.raises(ExportError, match="pass its --wire-scale and --wire-zero-point"):
        bundle_from_onnx(tmp_path / "q.onnx", tmp_path / "b2")
    bundle = bundle_from_onnx(tmp_path / "q.onnx", tmp_path / "b3", wire_scale=0.1, wire_zero_point=0)
    assert bundle.wire.dtype == "uint8" and bundle.manifest["wire"]["bytes_per_sample"] == 64
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ExportError, match="is not a valid ONNX model"):
        bundle_from_onnx(tmp_path / "junk.onnx", tmp_path / "b4")


# --- heads whose weights are external data (issue 13, item 8) ------------------------------------------------


def test_external_data_head_is_folded_into_the_bundle(tmp_path):
    (tmp_path / "src").mkdir()
    source = tiny_head(tmp_path / "src")
    assert (tmp_path / "src" / "head.onnx.data").is_file()
    bundle = bundle_from_onnx(source, tmp_path / "b")
    assert sorted(bundle.manifest["files"]) == ["head.onnx"] and sorted(os.listdir(bundle.path)) == [
        "head.onnx", "manifest.json"]
    images = np.random.default_rng(1).random((1, 1, 16, 16), dtype=np.float32)
    ff = emit_arrays(load_bundle(bundle.path), images, np.array([0]), {})
    assert np.allclose(ff.features, reference_output(source, images), atol=1e-5)
    assert list(bundle.manifest["imported_from"]["external_data"]) == ["head.onnx.data"]


def test_a_head_too_big_to_fold_keeps_its_external_data_hashed(tmp_path, monkeypatch):
    monkeypatch.setattr(import_head, "INLINE_LIMIT", 0)  # as if the model passed protobuf's 2 GiB limit
    (tmp_path / "src").mkdir()
    source = tiny_head(tmp_path / "src")
    bundle = bundle_from_onnx(source, tmp_path / "b")
    assert sorted(bundle.manifest["files"]) == ["head.onnx", "head.onnx.data"]
    images = np.random.default_rng(1).random((1, 1, 16, 16), dtype=np.float32)
    assert np.allclose(emit_arrays(verify_bundle(bundle.path), images, np.array([0]), {}).features,
                       reference_output(source, images), atol=1e-5)
    data = bytearray((bundle.path / "head.onnx.data").read_bytes())
    data[5] ^= 0xFF
    (bundle.path / "head.onnx.data").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="head.onnx.data does not match its sha256"):
        verify_bundle(bundle.path)


def test_a_head_onnxruntime_cannot_open_is_refused_before_any_bundle_is_written(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 8, 8])
    model = helper.make_model(helper.make_graph([helper.make_node("Mystery", ["x"], ["y"], domain="example.ops")],
                                                "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("example.ops", 1)])
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="onnxruntime cannot load m.onnx"):
        bundle_from_onnx(tmp_path / "m.onnx", tmp_path / "out" / "bundle")
    assert not (tmp_path / "out" / "bundle").exists()


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    source = tiny_head(tmp_path / "src")
    model = onnx.load(str(source), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../secret.bin"
    onnx.save(model, str(source))
    (tmp_path / "secret.bin").write_bytes(b"\0" * 256)
    with pytest.raises(ExportError, match="outside its folder"):
        bundle_from_onnx(source, tmp_path / "b")
