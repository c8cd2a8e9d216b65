"""Heads edgesplit did not make: a plain torch.onnx.export model is wrapped, emitted, profiled and audited."""

import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from edgesplit.errors import BackendError, ExportError
from edgesplit.export.import_head import bundle_from_onnx
from edgesplit.runtime import TimingConfig
from edgesplit.runtime.emit import emit_split
from edgesplit.runtime.profile import profile_bundle


class ForeignHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, 1, 1))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def plain_onnx(tmp_path_factory):
    """Exported the way a user outside edgesplit would: legacy exporter, fixed batch of 1, default names."""
    path = tmp_path_factory.mktemp("foreign") / "head.onnx"
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ForeignHead().eval(), (torch.zeros(1, 1, 32, 32),), str(path), dynamo=False)
    return path


def test_wrapped_head_emits_and_profiles_with_its_fixed_batch(plain_onnx, tmp_path):
    bundle = bundle_from_onnx(plain_onnx, tmp_path / "b")
    assert bundle.manifest["input"]["shape"] == [1, 1, 32, 32] and bundle.manifest["wire"]["format"] == "fp32"
    ff = emit_split(bundle.path, "digits", "test", limit=10)
    assert ff.features.shape == (10, 16, 16, 16)
    (row,) = profile_bundle(bundle.path, "ort", [1], TimingConfig(warmup=1, iters=3, min_seconds=0))
    assert row["model"] == "external:head"
    with pytest.raises(BackendError, match="takes batches of exactly 1"):
        profile_bundle(bundle.path, "ort", [4], TimingConfig(warmup=1, iters=3, min_seconds=0))


def test_audit_head_on_the_command_line(plain_onnx, tmp_path, capsys):
    from edgesplit.cli.main import main

    assert main(["audit", "--head", str(plain_onnx), "--data", "digits", "--decoder", "deconv", "--epochs", "3",
                 "--eval-limit", "24", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "external:head" in out and (tmp_path / "a" / "audit.json").is_file()


def test_attacks_that_need_the_pytorch_model_refuse_an_external_head(plain_onnx, tmp_path, capsys):
    from edgesplit.cli.main import main

    for extra in (["--attack", "whitebox"], ["--attack", "query-free"]):
        assert main(["audit", "--head", str(plain_onnx), "--data", "digits", "--epochs", "1", "--eval-limit", "8",
                     "--out", str(tmp_path / extra[1]), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert "external head" in err and "adaptive or gan" in err and "Traceback" not in err


def _graph(inputs, outputs, nodes):
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs),
                             opset_imports=[helper.make_opsetid("", 18)])


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
