"""Wrap an ONNX head that edgesplit did not make (a shipped model) into a bundle, so it can be profiled,
emitted and audited like any other. Its input must be N x C x H x W images in [0, 1]."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import onnx

from edgesplit.errors import ExportError
from edgesplit.export.bundle import HEAD, Bundle, check_output_folder, sha256_file, write_bundle
from edgesplit.export.wire import WireFormat

_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.UINT8: "uint8",
           onnx.TensorProto.INT8: "int8"}


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def bundle_from_onnx(onnx_path: str | Path, out_dir: str | Path, wire_scale: float | None = None,
                     wire_zero_point: int | None = None, force: bool = False) -> Bundle:
    """A bundle around `onnx_path` (one image input, one feature output); 8-bit outputs need their scale."""
    onnx_path = Path(onnx_path)
    check_output_folder(out_dir, force)
    try:
        model = onnx.load(str(onnx_path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        raise ExportError(f"{onnx_path} is not a valid ONNX model ({type(exc).__name__}: {str(exc)[:150]})") from None
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise ExportError(f"{onnx_path.name} has {len(inputs)} inputs and {len(model.graph.output)} outputs: a head "
                          f"takes one image batch and emits one feature tensor")
    in_dims, out_dims = _dims(inputs[0]), _dims(model.graph.output[0])
    if len(in_dims) != 4 or None in in_dims[1:] or in_dims[1] not in (1, 3):
        raise ExportError(f"{onnx_path.name} takes {in_dims}: expected N x C x H x W images with C 1 or 3 and fixed "
                          f"H and W")
    in_dtype = _DTYPES.get(inputs[0].type.tensor_type.elem_type)
    out_dtype = _DTYPES.get(model.graph.output[0].type.tensor_type.elem_type)
    if in_dtype not in ("float32", "float16") or out_dtype is None:
        raise ExportError(f"{onnx_path.name}: input {in_dtype}, output {out_dtype}; expected float input and a "
                          f"float or 8-bit output")
    if out_dtype in ("uint8", "int8"):
        if wire_scale is None or wire_zero_point is None:
            raise ExportError(f"{onnx_path.name} emits {out_dtype}: pass its --wire-scale and --wire-zero-point so "
                              f"the features can be dequantized")
        wire = WireFormat("int8", out_dtype, float(wire_scale), int(wire_zero_point))
    else:
        wire = WireFormat("fp32" if out_dtype == "float32" else "fp16", out_dtype)
    numel = 1
    for d in out_dims[1:]:
        if d is None:
            raise ExportError(f"{onnx_path.name}'s output {out_dims} has a dynamic feature dimension")
        numel *= d
    sha = sha256_file(onnx_path)
    manifest = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": f"external:{onnx_path.stem}", "spec": None, "weights": f"external onnx {sha}",
                  "checkpoint": None, "checkpoint_sha256": None},
        "cut": {"name": "output", "shape": out_dims[1:], "numel": numel},
        "input": {"name": inputs[0].name, "shape": in_dims, "dtype": in_dtype, "layout": "NCHW", "range": [0.0, 1.0],
                  "normalization": {"note": "external head: assumed to take images in [0, 1]"}},
        "output": {"name": model.graph.output[0].name, "shape": out_dims, "dtype": out_dtype},
        "wire": {**wire.to_dict(), "scheme": "per-tensor" if wire.format == "int8" else None,
                 "bytes_per_sample": numel * wire.itemsize},
        "precision": "external", "quantization": None, "calibration": None, "engines": {},
        "imported_from": {"file": onnx_path.name, "sha256": sha},
    }
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(onnx_path, Path(tmp) / HEAD)
        return write_bundle(out_dir, {HEAD: Path(tmp) / HEAD}, manifest, force=force)
