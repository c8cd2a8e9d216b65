"""Wrap an ONNX head that edgesplit did not make (a shipped model) into a bundle, so it can be profiled,
emitted and audited like any other. Its input must be N x C x H x W images in [0, 1].

Weights kept as external data (torch.onnx.export's dynamo exporter writes `head.onnx.data` beside the
graph) are folded into the bundle's head.onnx when the whole model fits protobuf's 2 GiB limit, and
otherwise written as one `head.onnx.data` beside it, hashed in the manifest like every other file.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path, PurePath

import onnx
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_model, uses_external_data

from edgesplit.errors import ExportError
from edgesplit.export.bundle import HEAD, Bundle, check_output_folder, sha256_file, write_bundle
from edgesplit.export.graph_io import value_record
from edgesplit.export.wire import WireFormat
from edgesplit.vocab import WIRE_DTYPES

WIRE_DTYPES_ALL = {d for names in WIRE_DTYPES.values() for d in names}  # what a head may take or emit

EXTERNAL_DATA = HEAD + ".data"
INLINE_LIMIT = 2**31 - (64 << 20)  # protobuf refuses messages of 2 GiB; leave room for the graph itself


def external_data_files(model: onnx.ModelProto) -> list[str]:
    """The files (relative to the model) that hold its external tensors, in first-use order."""
    tensors = [*model.graph.initializer,
               *(a.t for n in model.graph.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR)]
    return list(dict.fromkeys(ExternalDataInfo(t).location for t in tensors if uses_external_data(t)))


def load_with_external_data(onnx_path: Path) -> tuple[onnx.ModelProto, list[str]]:
    """The checked model with every external tensor read into it, and the external files it came from."""
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError...
        raise ExportError(f"{onnx_path} is not a valid ONNX model ({type(exc).__name__}: {str(exc)[:150]})") from None
    locations = external_data_files(model)
    for location in locations:
        if PurePath(location).is_absolute() or ".." in PurePath(location).parts:
            raise ExportError(f"{onnx_path.name} points its external data at {location!r}, outside its folder: "
                              f"refusing it; re-save the model with its data beside it")
        if not (onnx_path.parent / location).is_file():
            raise ExportError(f"{onnx_path.name} keeps its weights in {location}, which is not beside it in "
                              f"{onnx_path.parent}: copy {location} next to {onnx_path.name} (torch.onnx.export "
                              f"writes the two together)")
    try:
        onnx.checker.check_model(str(onnx_path))  # by path: also checks the external data, any size
        load_external_data_for_model(model, str(onnx_path.parent))
    except Exception as exc:  # ValidationError, OSError, a truncated data file...
        raise ExportError(f"{onnx_path} is not a valid ONNX model ({type(exc).__name__}: {str(exc)[:150]})") from None
    return model, locations


def stage_head(model: onnx.ModelProto, size: int, folder: Path) -> dict[str, Path]:
    """Write the model into `folder` as the bundle's head: one file when it fits protobuf's limit, else
    head.onnx plus one head.onnx.data. Returns bundle name -> staged path."""
    if size < INLINE_LIMIT:
        onnx.save_model(model, str(folder / HEAD))
        return {HEAD: folder / HEAD}
    onnx.save_model(model, str(folder / HEAD), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=EXTERNAL_DATA, size_threshold=1024)
    return {name: folder / name for name in (HEAD, EXTERNAL_DATA) if (folder / name).is_file()}


def check_runs(onnx_path: Path, name: str) -> None:
    """onnxruntime must open the staged head, so that no bundle is written that could not run."""
    from edgesplit.errors import BackendError
    from edgesplit.runners.onnxrt import ort_session

    try:
        ort_session(onnx_path)
    except BackendError:  # onnxruntime itself is missing: its own one-line advice
        raise
    except Exception as exc:  # onnxruntime's Fail, InvalidGraph, NotImplemented...
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ExportError(f"onnxruntime cannot load {name} ({type(exc).__name__}: {first[:150]}): it cannot be "
                          f"profiled or emitted; export the head with operators onnxruntime supports") from None


def bundle_from_onnx(onnx_path: str | Path, out_dir: str | Path, wire_scale: float | None = None,
                     wire_zero_point: int | None = None, force: bool = False) -> Bundle:
    """A bundle around `onnx_path` (one image input, one feature output); 8-bit outputs need their scale.

    Nothing is written to `out_dir` unless the head is valid and onnxruntime can open it."""
    onnx_path = Path(onnx_path)
    check_output_folder(out_dir, force)
    model, external = load_with_external_data(onnx_path)
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise ExportError(f"{onnx_path.name} has {len(inputs)} inputs and {len(model.graph.output)} outputs: a head "
                          f"takes one image batch and emits one feature tensor")
    source, sink = value_record(inputs[0]), value_record(model.graph.output[0])
    in_dims, out_dims = source["shape"] or [], sink["shape"] or []
    if len(in_dims) != 4 or None in in_dims[1:] or in_dims[1] not in (1, 3):
        raise ExportError(f"{onnx_path.name} takes {in_dims}: expected N x C x H x W images with C 1 or 3 and fixed "
                          f"H and W")
    in_dtype = source["dtype"] if source["dtype"] in WIRE_DTYPES_ALL else None
    out_dtype = sink["dtype"] if sink["dtype"] in WIRE_DTYPES_ALL else None
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
    size = onnx_path.stat().st_size + sum((onnx_path.parent / f).stat().st_size for f in external)
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
        "imported_from": {"file": onnx_path.name, "sha256": sha,
                          "external_data": {f: sha256_file(onnx_path.parent / f) for f in external}},
    }
    with tempfile.TemporaryDirectory(prefix="edgesplit-import-") as tmp:
        files = stage_head(model, size, Path(tmp))
        check_runs(files[HEAD], onnx_path.name)
        return write_bundle(out_dir, files, manifest, force=force)
