"""Bundles and heads that tests in several folders (export, runtime, cli) build the same way.

Two bundle fixture pairs share the names `pristine` (exported once per module) and `bundle` (a fresh copy per
test): an INT8 one and an FP32 one. A module imports the pair it means, which pytest then registers as the
module's own fixtures:

    from tests.export.helpers import fp32_bundle, fp32_pristine  # noqa: F401 - fixtures 'bundle', 'pristine'
"""

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesplit.export import ExportConfig, export_bundle
from edgesplit.export.bundle import MANIFEST, manifest_digest


@pytest.fixture(scope="module", name="pristine")
def int8_pristine(tmp_path_factory):
    """A classifier4 head at features.1 (1x32x32 in, 128x8x8 out), INT8, exported once."""
    return export_bundle(ExportConfig("classifier4", "features.1", precision="int8", input_shape=(1, 32, 32),
                                      calib_size=32, eval_size=32), tmp_path_factory.mktemp("b") / "bundle")


@pytest.fixture(name="bundle")
def int8_bundle_copy(pristine, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(pristine.path, copy)
    return copy


@pytest.fixture(scope="module", name="pristine")
def fp32_pristine(tmp_path_factory):
    """A tiny fp32 classifier4 head (1x32x32 in, 128x8x8 out), exported once."""
    return export_bundle(ExportConfig("classifier4", "features.1", precision="fp32", input_shape=(1, 32, 32),
                                      eval_size=16), tmp_path_factory.mktemp("b") / "c4")


@pytest.fixture(name="bundle")
def fp32_bundle(pristine, tmp_path):
    copy = tmp_path / "c4"
    shutil.copytree(pristine.path, copy)
    return copy


def rehash(bundle_dir, edit) -> None:
    """Edit manifest.json and recompute its digest, as a deliberate tamperer would."""
    path = bundle_dir / MANIFEST
    manifest = json.loads(path.read_text())
    edit(manifest)
    manifest["digest"] = manifest_digest(manifest)
    path.write_text(json.dumps(manifest, indent=2))


def tiny_head(folder, external: bool = True, channels: int = 32):
    """A conv head (1x1x16x16 -> 1x32x16x16, 1152 bytes of weights) saved as torch.onnx.export's dynamo exporter does: head.onnx with
    its weights in head.onnx.data beside it."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((channels, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 16, 16])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path = folder / "head.onnx"
    onnx.save_model(model, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
                    location="head.onnx.data", size_threshold=0)
    return path
