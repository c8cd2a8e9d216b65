"""Export: bundles at fp32/fp16/int8 that run in onnxruntime, agree with PyTorch, send the promised wire bytes,
are never half-written, and whose folders follow the umask."""

import hashlib
import json
import os
import stat

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgesplit.data import load_dataset
from edgesplit.errors import ExportError
from edgesplit.export import ExportConfig, export_bundle, verify_bundle
from edgesplit.export.bundle import write_bundle
from edgesplit.models import create_model, split
from edgesplit.runtime.pack import pack_bundle, unpack_bundle
from tests.export.helpers import fp32_pristine  # noqa: F401 - the fixture 'pristine'


def _session(bundle):
    return ort.InferenceSession(str(bundle.onnx_path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def resnet_bundles(tmp_path_factory):
    """resnet18 at layer2 (64x64 input): the issue's fp32/fp16/int8 bundles."""
    root = tmp_path_factory.mktemp("r18")
    out = {}
    for precision in ("fp32", "fp16", "int8"):
        config = ExportConfig("resnet18", "layer2.1", precision=precision, input_shape=(3, 64, 64), calib_size=64,
                              eval_size=96, int8_scope="all")  # the INT8 graph itself (size, wire): on any host
        out[precision] = export_bundle(config, root / precision)
    return out


def folder_mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_resnet18_layer2_bundles_meet_the_issue(resnet_bundles):
    fp32, fp16, int8 = resnet_bundles["fp32"], resnet_bundles["fp16"], resnet_bundles["int8"]
    size32 = fp32.onnx_path.stat().st_size
    assert 3.5 <= size32 / int8.onnx_path.stat().st_size <= 4.5, "INT8 head about 4x smaller than FP32"
    assert 1.8 <= size32 / fp16.onnx_path.stat().st_size <= 2.1
    assert int8.manifest["fidelity"]["mean_cosine"] >= 0.99
    numel = 128 * 32 * 32
    assert int8.manifest["wire"]["bytes_per_sample"] == numel
    assert fp16.manifest["wire"]["bytes_per_sample"] == 2 * numel
    assert fp32.manifest["wire"]["bytes_per_sample"] == 4 * numel
    assert fp32.manifest["fidelity"]["max_abs_error"] < 1e-4, "FP32 ONNX agrees with PyTorch"
    for bundle in (fp32, fp16, int8):
        onnx.checker.check_model(str(bundle.onnx_path), full_check=True)
        verify_bundle(bundle.path)


def test_int8_wire_really_is_one_byte_per_value(resnet_bundles):
    bundle = resnet_bundles["int8"]
    x = np.random.default_rng(0).random((3, 3, 64, 64), dtype=np.float32)
    payload = _session(bundle).run(None, {"input": x})[0]
    wire = bundle.wire
    assert payload.dtype == np.dtype(wire.dtype) and payload.dtype.itemsize == 1
    assert payload.nbytes == 3 * bundle.manifest["wire"]["bytes_per_sample"]
    assert bundle.manifest["output"]["dtype"] == wire.dtype and wire.scale > 0
    # dequantized exactly as the manifest says, the features match the PyTorch head
    model = create_model("resnet18", img_size=64)
    torch.manual_seed(0)
    model = create_model("resnet18", img_size=64)
    with torch.no_grad():
        ref = split(model, "layer2.1").head(torch.from_numpy(x)).numpy()
    got = wire.decode(payload)
    cos = (ref * got).sum() / np.linalg.norm(ref) / np.linalg.norm(got)
    assert cos > 0.99
    assert np.abs(got - ref).max() <= 4 * wire.scale + np.abs(ref).max() * 0.05


def test_fp16_graph_is_genuine(resnet_bundles):
    model = onnx.load(str(resnet_bundles["fp16"].onnx_path))
    float_inits = [i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    assert not float_inits, f"FP32 weights left in the FP16 graph: {float_inits[:3]}"
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert resnet_bundles["fp16"].manifest["input"]["dtype"] == "float16"
    out = _session(resnet_bundles["fp16"]).run(None, {"input": np.zeros((2, 3, 64, 64), np.float16)})[0]
    assert out.dtype == np.float16


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_batch_axis_is_dynamic(resnet_bundles, precision):
    bundle = resnet_bundles[precision]
    dtype = np.float16 if precision == "fp16" else np.float32
    session = _session(bundle)
    for batch in (1, 5):
        out = session.run(None, {"input": np.zeros((batch, 3, 64, 64), dtype)})[0]
        assert out.shape == (batch, 128, 32, 32)


def test_manifest_records_what_a_device_needs(resnet_bundles):
    m = resnet_bundles["int8"].manifest
    assert m["schema"] == "edgesplit.bundle" and m["schema_version"] == 1
    assert m["input"]["shape"] == [None, 3, 64, 64] and m["input"]["layout"] == "NCHW"
    assert m["output"]["shape"] == [None, 128, 32, 32]
    assert m["quantization"]["format"] == "QDQ" and m["quantization"]["per_channel_weights"] is True
    assert m["quantization"]["activation_type"] in ("QUInt8", "QInt8")
    cal = m["calibration"]
    assert cal["split"] == "train" and cal["method"] == "minmax" and cal["size"] == 64
    ids = load_dataset("digits", split="train", img_size=64, channels=3, limit=64).ids
    assert cal["ids_sha256"] == hashlib.sha256(np.asarray(ids, np.int64).tobytes()).hexdigest()
    assert m["evaluation"]["split"] == "test"
    assert set(m["files"]) == {"head.onnx", "fidelity.json"}
    assert "/" not in json.dumps(m["export"]), "no machine paths in a shipped manifest"
    for key in ("torch", "onnx", "onnxruntime", "edgesplit"):
        assert m["tools"][key]
    assert m["created"].endswith("+00:00")
    fidelity = json.loads((resnet_bundles["int8"].path / "fidelity.json").read_text())
    assert {"max_abs_error", "mean_cosine", "snr_db", "tail_top1_fp32_features", "tail_top1_exported_features",
            "head_onnx_bytes"} <= set(fidelity)


def test_export_is_reproducible_without_a_checkpoint(tmp_path):
    config = ExportConfig("classifier4", "features.0", input_shape=(1, 32, 32), eval_size=16)
    a = export_bundle(config, tmp_path / "a")
    b = export_bundle(config, tmp_path / "b")
    assert a.manifest["files"]["head.onnx"] == b.manifest["files"]["head.onnx"]
    assert a.manifest["model"]["weights"].startswith("random-init")


@pytest.mark.parametrize("precision, wire, dtype", [("fp32", "int8", "uint8"), ("fp16", "int8", "uint8"),
                                                    ("int8", "fp32", "float32"), ("int8", "fp16", "float16"),
                                                    ("fp32", "fp16", "float16")])
def test_any_precision_with_any_wire(tmp_path, precision, wire, dtype):
    config = ExportConfig("classifier4", "features.2", precision=precision, wire=wire, input_shape=(1, 32, 32),
                          calib_size=32, eval_size=32, target="x86-vnni", int8_scope="all")
    bundle = export_bundle(config, tmp_path / "b")
    assert bundle.manifest["wire"]["format"] == wire and bundle.manifest["output"]["dtype"] == dtype
    in_dtype = np.float16 if precision == "fp16" else np.float32
    out = _session(bundle).run(None, {"input": np.zeros((2, 1, 32, 32), in_dtype)})[0]
    assert out.dtype == np.dtype(dtype)
    assert bundle.manifest["fidelity"]["mean_cosine"] > 0.98


@pytest.mark.parametrize("cut", ["features.0", "features.1", "features.2", "features.3", "fc.1"])
def test_every_classifier4_block_cut_exports_at_int8(tmp_path, cut):
    config = ExportConfig("classifier4", cut, precision="int8", input_shape=(1, 32, 32), calib_size=32, eval_size=32)
    bundle = export_bundle(config, tmp_path / "b")
    assert bundle.manifest["fidelity"]["mean_cosine"] > 0.98


# --- bad input -----------------------------------------------------------------------------------------------


def test_unknown_cut(tmp_path):
    with pytest.raises(Exception, match="unknown cut 'layer9'"):
        export_bundle(ExportConfig("resnet18", "layer9"), tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_existing_bundle_is_kept_unless_forced(tmp_path):
    config = ExportConfig("classifier4", "features.0", input_shape=(1, 32, 32), eval_size=16)
    first = export_bundle(config, tmp_path / "b")
    other = ExportConfig("classifier4", "features.1", input_shape=(1, 32, 32), eval_size=16)
    with pytest.raises(ExportError, match="already holds a bundle.*--force"):
        export_bundle(other, tmp_path / "b")
    assert verify_bundle(tmp_path / "b").manifest["cut"]["name"] == "features.0"
    second = export_bundle(other, tmp_path / "b", force=True)
    assert second.manifest["cut"]["name"] == "features.1" and first.path == second.path
    assert verify_bundle(tmp_path / "b")


def test_failed_export_leaves_nothing_half_written(tmp_path, monkeypatch):
    import edgesplit.export.pipeline as pipeline

    def boom(*a, **k):
        raise ExportError("simulated failure during the fidelity check")

    monkeypatch.setattr(pipeline, "measure_fidelity", boom)
    with pytest.raises(ExportError, match="simulated"):
        export_bundle(ExportConfig("classifier4", "features.0", input_shape=(1, 32, 32), eval_size=16),
                      tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_missing_tensorrt_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(ExportError, match=r"TensorRT is not installed.*edgesplit\[trt\]"):
        export_bundle(ExportConfig("classifier4", "features.0", format="tensorrt", input_shape=(1, 32, 32)),
                      tmp_path / "b")
    assert not (tmp_path / "b").exists()


# --- bundle folders follow the umask (issue 13, item 22) -----------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_and_unpacked_bundles_follow_the_umask(pristine, tmp_path, umask):
    old = os.umask(umask)
    try:
        files = {name: pristine.path / name for name in pristine.manifest["files"]}
        meta = {k: v for k, v in pristine.manifest.items() if k not in ("schema", "schema_version", "files",
                                                                      "digest")}
        written = write_bundle(tmp_path / "w", files, meta)
        unpacked = unpack_bundle(pack_bundle(pristine, tmp_path / "p.tar.gz"), tmp_path / "u")
    finally:
        os.umask(old)
    assert folder_mode(written.path) == 0o777 & ~umask
    assert folder_mode(unpacked) == 0o777 & ~umask


def test_an_exported_bundle_is_readable_by_others_under_umask_022(pristine):
    assert folder_mode(pristine.path) == 0o755  # pytest runs under the usual 022


# --- slow ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["classifier4", "resnet18", "resnet20", "vgg11_bn", "vgg11_bn_sgm", "vgg16_bn",
                                  "vgg19", "mobilenet_v3_small", "ir18"])
def test_every_zoo_model_at_every_block_cut(tmp_path, name):
    from edgesplit.models import cut_points

    size = 64 if name == "ir18" else 32
    model = create_model(name, img_size=size)
    for cut in cut_points(model, torch.zeros(1, 3, size, size)):
        for precision in ("fp32", "int8"):
            config = ExportConfig(name, cut.name, precision=precision, input_shape=(3, size, size), calib_size=32,
                                  eval_size=32)
            bundle = export_bundle(config, tmp_path / f"{cut.name}-{precision}")
            assert bundle.manifest["fidelity"]["mean_cosine"] > (0.9999 if precision == "fp32" else 0.95), cut.name
