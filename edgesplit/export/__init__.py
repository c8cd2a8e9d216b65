"""Export: deployable head bundles (ONNX FP32/FP16/INT8, optional TensorRT engine) with a signed manifest.

    from edgesplit.export import ExportConfig, export_bundle, verify_bundle
    bundle = export_bundle(ExportConfig("resnet18", "layer2.1", precision="int8", input_shape=(3, 64, 64)), "out/")

The bundle/wire modules are torch-free (the device side uses them); `export_bundle` imports torch when called.
"""

from edgesplit.export.bundle import Bundle, load_bundle, verify_bundle
from edgesplit.export.config import CALIB_METHODS, FORMATS, PRECISIONS, ExportConfig
from edgesplit.export.int8_targets import TARGETS, QuantScheme, detect_target, scheme_for
from edgesplit.export.wire import WIRES, WireFormat


def export_bundle(config, out_dir, force=False, progress=None):
    """See `edgesplit.export.pipeline.export_bundle` (imported lazily: it needs torch)."""
    from edgesplit.export.pipeline import export_bundle as _export

    return _export(config, out_dir, force=force, progress=progress)


__all__ = ["CALIB_METHODS", "FORMATS", "PRECISIONS", "TARGETS", "WIRES", "Bundle", "ExportConfig", "QuantScheme",
           "WireFormat", "detect_target", "export_bundle", "load_bundle", "scheme_for", "verify_bundle"]
