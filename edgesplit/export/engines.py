"""`add_engine`: build a TensorRT engine for this GPU from a bundle's head and add it to the bundle (re-signed).

The builder itself lives with the TensorRT runner (`edgesplit.runners.tensorrt.build_engine`); this is the
bundle-level step: load, check the precision and quantization, build, and re-sign with the new file.
"""

from __future__ import annotations

from pathlib import Path

from edgesplit.errors import ExportError
from edgesplit.runners.tensorrt import INT8, build_engine
from edgesplit.vocab import PRECISIONS


def add_engine(bundle_path, *, precision: str | None = None, max_batch: int = 32, workspace_mb: int = 1024,
               trt=None, memory=None):
    """On the board: build an engine for this GPU from a bundle's `head.onnx` and add it to the bundle.

    Engines are tied to one GPU and TensorRT version, so the usual flow exports ONNX on the host and builds
    here. INT8 bundles build from their Q/DQ graph (explicit quantization), which must be symmetric int8
    (`--target tensorrt` at export). External heads name their precision with `precision`.
    Returns the re-signed Bundle (its manifest lists the new engine beside any others).
    """
    import tempfile

    from edgesplit.export.bundle import add_files, load_bundle

    bundle = load_bundle(bundle_path)
    m = bundle.manifest
    precision = precision or m["precision"]
    if precision not in PRECISIONS:
        raise ExportError(f"bundle {bundle.path.name} is an external head: name its precision with --precision "
                          f"fp32|fp16|int8 (int8 for a Q/DQ graph)")
    quant = m.get("quantization") or {}
    if precision == INT8 and quant and not quant.get("activation_symmetric", True):
        raise ExportError(f"bundle {bundle.path.name} was quantized for target {quant.get('target')} (asymmetric "
                          f"{quant.get('activation_type')} activations); TensorRT takes symmetric int8 Q/DQ only: "
                          f"re-export with --target tensorrt")
    with tempfile.TemporaryDirectory(prefix=".engine.", dir=bundle.path.parent) as tmp:
        record = build_engine(bundle.onnx_path, tmp, precision, input_shape=tuple(m["input"]["shape"][1:]),
                              max_batch=max_batch, workspace_mb=workspace_mb, input_dtype=m["input"]["dtype"],
                              input_name=m["input"]["name"], fixed_batch=m["input"]["shape"][0], trt=trt,
                              memory=memory)
        return add_files(bundle, {record["file"]: Path(tmp) / record["file"]},
                         {"engines": {**bundle.engines(), record["file"]: record}})
