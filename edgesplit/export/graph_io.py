"""The manifest against the graph: a bundle's input, output and wire records must describe what its ONNX
file declares. Read with onnx (the graph only, external weights not loaded) or, on a device without onnx,
with onnxruntime. Torch-free: the device runner verifies bundles with it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgesplit.errors import BundleError


def graph_io(onnx_path: str | os.PathLike) -> tuple[list[dict], list[dict]] | None:
    """The graph's (inputs, outputs) as {name, shape, dtype}: shape None where undeclared, a dim None where
    dynamic. Read with onnx (the graph only, external weights not loaded); on a device without onnx, with
    onnxruntime; None where neither is installed (a TensorRT-only board: the file hashes still hold)."""
    try:
        import onnx
    except ImportError:
        return _graph_io_onnxruntime(onnx_path)
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError, OSError: a file that is not an ONNX model
        raise BundleError(f"{onnx_path} is not a readable ONNX model ({type(exc).__name__}): re-export the "
                          f"bundle") from None
    initializers = {i.name for i in model.graph.initializer}
    inputs = [value_record(i) for i in model.graph.input if i.name not in initializers]
    return inputs, [value_record(o) for o in model.graph.output]


def value_record(value_info) -> dict:
    """{name, shape, dtype} of an ONNX ValueInfo: shape None where undeclared, a dim None where dynamic; dtype a
    numpy name (or 'ONNX element type N' where numpy has none)."""
    import onnx

    tensor = value_info.type.tensor_type
    shape = None
    if tensor.HasField("shape"):
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
    except (KeyError, ValueError, TypeError):
        dtype = f"ONNX element type {tensor.elem_type}"
    return {"name": value_info.name, "shape": shape, "dtype": dtype}


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
              "tensor(int8)": "int8"}


def _graph_io_onnxruntime(onnx_path) -> tuple[list[dict], list[dict]] | None:
    from edgesplit.errors import BackendError
    from edgesplit.runners.onnxrt import ort_session

    try:
        session = ort_session(onnx_path)
    except BackendError:  # no onnxruntime either: nothing here can read the graph
        return None
    except Exception as exc:  # onnxruntime's Fail, InvalidGraph...
        raise BundleError(f"{onnx_path} cannot be opened by onnxruntime ({type(exc).__name__}): re-export the "
                          f"bundle") from None

    def record(arg) -> dict:
        shape = None if arg.shape is None else [d if isinstance(d, int) else None for d in arg.shape]
        return {"name": arg.name, "shape": shape, "dtype": _ORT_TYPES.get(arg.type, arg.type)}

    return [record(a) for a in session.get_inputs()], [record(a) for a in session.get_outputs()]


def _shape_mismatch(declared, actual: list | None) -> bool:
    """True when the manifest's shape cannot be the graph's: another rank, or a fixed size that differs."""
    if not isinstance(declared, list):
        return True
    if actual is None:  # the graph does not declare a shape: nothing to compare
        return False
    if len(declared) != len(actual):
        return True
    return any(g is not None and d != g for d, g in zip(declared, actual, strict=True))


def _numel(dims) -> int | None:
    n = 1
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool):
            return None
        n *= d
    return n


_REEXPORT = "re-export the bundle (its manifest was edited and re-hashed, or written by another tool)"


def check_manifest_against_graph(path: str | os.PathLike, manifest: dict, head: str = "head.onnx") -> None:
    """The manifest's input, output and wire records must describe head.onnx's declared I/O: a manifest edited
    and re-hashed so that it lies about a shape or dtype is refused, naming the first difference."""
    path = Path(path)
    io = graph_io(path / head)
    if io is None:  # neither onnx nor onnxruntime here: nothing can read the graph
        return
    for role, declared in zip(("input", "output"), io, strict=True):
        _checkvalue_record(path, head, role, manifest.get(role), declared)
    wire, out_dtype = manifest.get("wire"), manifest["output"]["dtype"]
    wire_dtype = wire.get("dtype") if isinstance(wire, dict) else None
    if wire_dtype != out_dtype:
        raise BundleError(f"bundle {path}: the manifest says wire dtype {wire_dtype}, {head} emits {out_dtype}: "
                          f"{_REEXPORT}")
    per_sample = _numel(manifest["output"]["shape"][1:])
    if per_sample is not None and wire.get("bytes_per_sample") != per_sample * _itemsize(out_dtype):
        raise BundleError(f"bundle {path}: the manifest says {wire.get('bytes_per_sample')} wire bytes per sample, "
                          f"its output shape {manifest['output']['shape']} in {out_dtype} makes "
                          f"{per_sample * _itemsize(out_dtype)}: {_REEXPORT}")


def _checkvalue_record(path: Path, head: str, role: str, record, declared: list[dict]) -> None:
    if not isinstance(record, dict):
        raise BundleError(f"bundle {path}: manifest.json has no {role} record: {_REEXPORT}")
    graph = next((g for g in declared if g["name"] == record.get("name")), None)
    if graph is None:
        names = ", ".join(repr(g["name"]) for g in declared)
        raise BundleError(f"bundle {path}: the manifest's {role} {record.get('name')!r} is not an {role} of "
                          f"{head} (it has {names}): {_REEXPORT}")
    if record.get("dtype") != graph["dtype"]:
        raise BundleError(f"bundle {path}: the manifest says {role} dtype {record.get('dtype')}, {head} declares "
                          f"{graph['dtype']}: {_REEXPORT}")
    if _shape_mismatch(record.get("shape"), graph["shape"]):
        raise BundleError(f"bundle {path}: the manifest says {role} shape {record.get('shape')}, {head} declares "
                          f"{graph['shape']}: {_REEXPORT}")


def _itemsize(dtype: str) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:  # an ONNX element type numpy does not know: no byte count to compare
        return 0
