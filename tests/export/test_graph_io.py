"""A manifest edited and re-hashed so that it lies about the graph is refused, even on a device without the
onnx package (onnxruntime reads the graph's inputs and outputs)."""

import pytest

from edgesplit.errors import BundleError
from edgesplit.export import verify_bundle
from tests.export.helpers import fp32_bundle, fp32_pristine, rehash  # noqa: F401 - the fixtures 'bundle', 'pristine'


def test_a_device_without_the_onnx_package_still_checks_the_manifest_against_the_graph(bundle, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError: onnxruntime reads the graph
    assert verify_bundle(bundle)
    rehash(bundle, lambda m: m["output"].update(shape=[None, 64, 8, 8]))
    with pytest.raises(BundleError, match="manifest says output shape"):
        verify_bundle(bundle)
