"""Export: deployable head bundles (ONNX FP32/FP16/INT8, optional TensorRT engine) with a signed manifest.

    from edgesplit.export import ExportConfig, export_bundle, verify_bundle
    bundle = export_bundle(ExportConfig("resnet18", "layer2.1", precision="int8", input_shape=(3, 64, 64)), "out/")

The bundle/wire modules are torch-free (the device side uses them); `export_bundle` imports torch when called.
"""

from edgesplit.export.bundle import Bundle, load_bundle, verify_bundle
from edgesplit.export.config import CALIB_METHODS, FORMATS, PRECISIONS, ExportConfig
from edgesplit.export.int8_targets import TARGETS, QuantScheme, detect_target, scheme_for
from edgesplit.export.wire import WIRES, WireFormat


def __getattr__(name: str):
    """`export_bundle` is `edgesplit.export.pipeline.export_bundle`, imported on first use (it needs onnx and
    onnxruntime, and torch for PyTorch heads), so the device side can import this package cheaply."""
    if name == "export_bundle":
        from edgesplit.export.pipeline import export_bundle

        return export_bundle
    raise AttributeError(f"module 'edgesplit.export' has no attribute {name!r}")


__all__ = ["CALIB_METHODS", "FORMATS", "PRECISIONS", "TARGETS", "WIRES", "Bundle", "ExportConfig", "QuantScheme",
           "WireFormat", "detect_target", "export_bundle", "load_bundle", "scheme_for", "verify_bundle"]
