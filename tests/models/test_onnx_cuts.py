"""Cutting any ONNX model (issue 15, the library half): legal cuts, costs, the split, and every bad input.

Real exports: edgesplit's resnet18 and mobilenet_v3_small written by plain `torch.onnx.export`, with the
default (dynamo) exporter, which writes external data and folds BatchNorm, and the legacy TorchScript one
(`dynamo=False`; for resnet18 with BatchNorm kept and weight Identity nodes). Their ONNX block cuts must be
the PyTorch analysis' blocks (same per-sample shape, head MACs within 1 %). Hand-made graphs pin down the
rules: residual joins, Constant nodes, Identity chains, a tensor with two consumers, BatchNorm, opsets 13/21.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesplit.errors import CutError, ModelError
from edgesplit.models.onnx_cuts import analyse_onnx, onnx_cut_points
from edgesplit.models.onnx_graph import prepare_onnx_model
from edgesplit.models.onnx_split import split_onnx

ROOT = Path(__file__).resolve().parents[2]
LEGACY_EXPORT = [  # the TorchScript exporter's deprecation notices, and nothing else
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning"),
]
pytestmark = LEGACY_EXPORT
IMG = 64


# --- hand-made graphs ---------------------------------------------------------------------------------

def _toy(opset: int = 13, dims=("N", 3, 8, 8)) -> onnx.ModelProto:
    """conv-BN-relu, an Identity chain, a residual block whose input has two consumers, a Constant scale,
    pool, flatten, gemm. A weight-only Identity (as TorchScript exports have) and the Constant come first."""
    rng = np.random.default_rng(0)

    def init(name, *shape, positive=False):
        a = rng.standard_normal(shape).astype(np.float32)
        return numpy_helper.from_array(np.abs(a) + 0.5 if positive else a, name)

    inits = [init("w1", 4, 3, 3, 3), init("bn_scale", 4), init("bn_bias", 4), init("bn_mean", 4),
             init("bn_var", 4, positive=True), init("w2", 4, 4, 3, 3), init("fc_w", 5, 4), init("fc_b", 5)]
    k = numpy_helper.from_array(np.array([2.0], np.float32))
    nodes = [
        helper.make_node("Constant", [], ["k"], name="const_k", value=k),
        helper.make_node("Identity", ["w2"], ["w2i"], name="w2_alias"),
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["b1"], name="bn1"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("Identity", ["r1"], ["i1"], name="id1"),
        helper.make_node("Identity", ["i1"], ["i2"], name="id2"),
        helper.make_node("Conv", ["i2", "w2i"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Add", ["r2", "i2"], ["a1"], name="join"),
        helper.make_node("Mul", ["a1", "k"], ["m1"], name="scale"),
        helper.make_node("Relu", ["m1"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], name="pool"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["out"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [dims[0], 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7 if opset < 21 else 10)


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _with_outputs(model: onnx.ModelProto, names) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for name in names:
        out.graph.output.add().name = name
    return out


@pytest.mark.parametrize("opset", [13, 21])
def test_toy_graph_legal_cuts_blocks_and_costs(opset):
    a = analyse_onnx(_toy(opset))
    assert [c.name for c in a.layers] == ["c1", "b1", "r1", "i1", "i2", "a1", "m1", "r3", "g", "f"]
    assert [c.name for c in a.blocks] == ["r1", "r3", "g"]  # BN/relu onto the conv, Identity/Flatten backwards
    assert all(c.is_block == (c.name in ("r1", "r3", "g")) for c in a.layers)
    cut = {c.name: c for c in a.layers}
    assert cut["r1"].shape == (4, 8, 8) and cut["g"].shape == (4, 1, 1) and cut["f"].shape == (4,)
    conv1, conv2, gemm = 4 * 8 * 8 * (3 * 3 * 3), 4 * 8 * 8 * (4 * 3 * 3), 5 * 4  # out elems x Cin x kH x kW
    assert cut["c1"].macs == cut["r1"].macs == conv1
    assert cut["r3"].macs == cut["f"].macs == conv1 + conv2
    assert a.total_macs == conv1 + conv2 + gemm
    assert cut["c1"].params == 108  # the Constant sits first in the graph but is not in this head
    assert cut["r1"].params == 108 + 4 * 4  # + BatchNorm's four vectors
    assert cut["r3"].params == 124 + 144 + 1  # + w2 (through its Identity alias) + the Constant
    assert a.total_params == 269 + 20 + 5
    assert cut["r1"].payload_bytes == {"fp32": 1024, "fp16": 512, "int8": 256}
    assert cut["r1"].index == 4 and cut["r1"].node == "relu1"
    assert a.input_name == "x" and a.input_shape == (3, 8, 8)
    assert a.all("layer") is a.layers and a.all("block") is a.blocks
    assert a.resolve("a1") is cut["a1"]
    with pytest.raises(ModelError, match="unknown granularity 'module'"):
        a.all("module")


@pytest.mark.parametrize("opset", [13, 21])
def test_toy_graph_split_runs_in_onnxruntime(opset):
    model = _toy(opset)
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8)).astype(np.float32)
    whole = _run(_with_outputs(model, ["r1", "a1", "r3"]), {"x": x})
    for name, expected in zip(["r1", "a1", "r3"], whole[1:], strict=True):
        head, tail = split_onnx(model, name)
        assert head.opset_import[0].version == opset and head.ir_version == model.ir_version
        assert [d.dim_param for d in (head.graph.input[0].type.tensor_type.shape.dim[0],
                                      head.graph.output[0].type.tensor_type.shape.dim[0],
                                      tail.graph.input[0].type.tensor_type.shape.dim[0])] == ["N", "N", "N"]
        (h,) = _run(head, {"x": x})
        (y,) = _run(tail, {name: h})
        np.testing.assert_allclose(h, expected, atol=1e-6)
        np.testing.assert_allclose(y, whole[0], atol=1e-5)
    head, tail = split_onnx(model, "r1")
    assert "w2" not in {t.name for t in head.graph.initializer}
    assert {"w2", "fc_w"} <= {t.name for t in tail.graph.initializer}
    assert "const_k" in {n.name for n in tail.graph.node} and "const_k" not in {n.name for n in head.graph.node}


def test_illegal_cuts_say_what_crosses_and_the_nearest_legal_cuts():
    a = analyse_onnx(_toy())
    with pytest.raises(CutError) as e:
        a.resolve("r2")
    assert str(e.value) == ("cut 'r2' would send 2 tensors (i2, r2), e.g. inside a residual block; "
                            "nearest legal cuts: r1, r3")
    with pytest.raises(CutError, match="cut 'c2' would send 2 tensors"):
        split_onnx(_toy(), "c2")


@pytest.mark.parametrize("name, says", [
    ("rr2", r"'rr2' is not a tensor of the ONNX model \(closest: r2"),
    ("w1", "'w1' is a weight"),
    ("w2i", "'w2i' is computed from weights only"),
    ("k", "'k' is computed from weights only"),
    ("x", "'x' is the graph input: the head would be empty; cut after it, e.g. r1"),
    ("out", "'out' is an output of the ONNX model: the tail would be empty"),
])
def test_names_that_are_no_cut_say_why(name, says):
    with pytest.raises(CutError, match=says):
        analyse_onnx(_toy()).resolve(name)


def test_many_crossing_tensors_are_cut_short():
    relus = [helper.make_node("Relu", ["x"], [f"a{k}"], name=f"r{k}") for k in range(6)]
    nodes = [*relus, helper.make_node("Sum", [f"a{k}" for k in range(6)], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    graph = helper.make_graph(nodes, "fan", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    a = analyse_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8))
    assert [c.name for c in a.layers] == ["s"]
    with pytest.raises(CutError) as e:
        a.resolve("a4")
    assert str(e.value) == ("cut 'a4' would send 6 tensors (x, a0, a1, a2, ...), e.g. inside a residual block; "
                            "nearest legal cuts: s")


def test_dynamic_height_and_width_need_input_shape(tmp_path):
    path = _save(_toy(dims=("N", 3, "H", "W")), tmp_path / "dyn.onnx")
    with pytest.raises(ModelError) as e:
        analyse_onnx(path)
    assert str(e.value) == f"{path}: input 'x' has dynamic dims (Nx3xHxW); pass --input CxHxW to fix them"
    a = analyse_onnx(path, input_shape=(3, 16, 16))
    assert [c.name for c in a.blocks] == ["r1", "r3", "g"] and a.blocks[0].shape == (4, 16, 16)
    head, _ = split_onnx(path, "r1", input_shape=(3, 16, 16))
    assert [d.dim_param or d.dim_value for d in head.graph.input[0].type.tensor_type.shape.dim] == ["N", 3, 16, 16]
    with pytest.raises(ModelError, match=r"input 'x' is Nx3x8x8, not 3x16x16; pass --input 3x8x8 or leave it out"):
        analyse_onnx(_toy(), input_shape=(3, 16, 16))
    dynamic = _toy(dims=("N", 3, "H", "W"))
    assert analyse_onnx(dynamic, input_shape=(3, 4, 4)).blocks[0].shape == (4, 4, 4)
    assert analyse_onnx(dynamic, input_shape=(3, 6, 6)).blocks[0].shape == (4, 6, 6)  # the caller's model unchanged
    no_pad = _toy(dims=("N", 3, "H", "W"))
    del no_pad.graph.node[2].attribute[:]  # conv1 without padding: a 3x3 kernel on 2x2 pixels leaves nothing
    with pytest.raises(ModelError, match=r"^the ONNX model: tensor 'c1' would be empty \(4x0x0\) for this input; "
                                         r"check --input$"):
        analyse_onnx(no_pad, input_shape=(3, 2, 2))
    mistyped = _toy()
    mistyped.graph.node[0].attribute[0].t.CopyFrom(numpy_helper.from_array(np.array([2], np.int64)))
    with pytest.raises(ModelError, match=r"^the ONNX model: ONNX shape inference failed \(InferenceError: .*"
                                         r"; check --input$"):
        analyse_onnx(mistyped)  # Mul of a float tensor and an int64 Constant


def test_bad_files_are_one_line_model_errors(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_text("this is not an ONNX model\n")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    broken = _toy()
    broken.graph.node[4].input[0] = "nowhere"  # relu1 reads a value nothing computes
    cases = {
        tmp_path / "missing.onnx": "no such ONNX file",
        tmp_path: "no such ONNX file (it is a folder)",
        garbage: "is not an ONNX model (DecodeError:",
        empty: "fails the ONNX checker (ValidationError: The model does not have an ir_version",
        _save(broken, tmp_path / "broken.onnx"): "fails the ONNX checker (ValidationError: Nodes in a graph must be "
                                                 "topologically sorted",
    }
    for path, message in cases.items():
        with pytest.raises(ModelError) as e:
            analyse_onnx(path)
        assert str(path) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ModelError, match=r"^the ONNX model fails the ONNX checker \(ValidationError"):
        analyse_onnx(broken)
    with pytest.raises(ModelError, match="expected an onnx.ModelProto or a path, got dict"):
        prepare_onnx_model({})


def test_two_graph_inputs_are_refused(tmp_path):
    graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "two",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 4, 4]) for n in "xy"],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = _save(model, tmp_path / "2.onnx")
    with pytest.raises(ModelError) as e:
        analyse_onnx(path)
    assert str(e.value) == f"{path} has 2 graph inputs (x, y); edgesplit cuts models with exactly one image input"


def test_external_data_beside_the_model_missing_outside_or_truncated(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    path = folder / "toy.onnx"
    onnx.save_model(_toy(), str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="toy.data",
                    size_threshold=0)
    a = analyse_onnx(path)
    assert [c.name for c in a.blocks] == ["r1", "r3", "g"] and a.total_params == 294
    x = np.ones((2, 3, 8, 8), np.float32)
    (expected,) = _run(onnx.load(str(path)), {"x": x})
    head, tail = split_onnx(path, "r3")
    assert not any(t.data_location == TensorProto.EXTERNAL for t in [*head.graph.initializer, *tail.graph.initializer])
    np.testing.assert_allclose(_run(tail, {"r3": _run(head, {"x": x})[0]})[0], expected, atol=1e-5)
    unloaded = onnx.load(str(path), load_external_data=False)
    with pytest.raises(ModelError, match="keeps weights in external data files: pass base_dir"):
        split_onnx(unloaded, "r3")
    head, _ = split_onnx(unloaded, "r3", base_dir=folder)
    (_, r3) = _run(_with_outputs(onnx.load(str(path)), ["r3"]), {"x": x})
    np.testing.assert_allclose(_run(head, {"x": x})[0], r3, atol=1e-6)

    data = (folder / "toy.data").read_bytes()
    (folder / "toy.data").write_bytes(data[:100])
    with pytest.raises(ModelError, match=r"external data file 'toy.data' is truncated \(100 bytes, tensor 'w1' "):
        analyse_onnx(path)
    (folder / "toy.data").unlink()
    with pytest.raises(ModelError) as e:
        analyse_onnx(path)
    assert str(e.value) == (f"{path}: external data file 'toy.data' is missing (tensor 'w1'); copy it into {folder} "
                            f"beside the model, as the exporter wrote it")
    (tmp_path / "toy.data").write_bytes(data)
    for tensor in unloaded.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../toy.data"
    _save(unloaded, path)
    with pytest.raises(ModelError, match=r"tensor 'w1' keeps its data at '../toy.data', outside the model's folder; "
                                         r"refused"):
        analyse_onnx(path)


def test_modules_import_no_torch():
    for name in ("cutpoint", "onnx_graph", "onnx_cuts", "onnx_split"):
        tree = ast.parse((ROOT / "edgesplit" / "models" / f"{name}.py").read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.split(".")[0] in ("torch", "torchvision")}, name


# --- real exports ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{(model, exporter): (onnx path, PyTorch CutAnalysis)} for plain torch.onnx.export files."""
    import torch

    from edgesplit.models import analyse, create_model

    folder = tmp_path_factory.mktemp("exports")
    out = {}
    for name in ("resnet18", "mobilenet_v3_small"):
        model = create_model(name, num_classes=10, img_size=IMG).eval()
        x = torch.randn(2, 3, IMG, IMG)
        pytorch = analyse(model, x[:1])
        path = folder / f"{name}.onnx"
        torch.onnx.export(model, (x,), str(path), dynamic_shapes=({0: torch.export.Dim("batch")},))
        out[name, "dynamo"] = path, pytorch
        legacy = folder / f"{name}_legacy.onnx"
        keep_bn = {"do_constant_folding": False, "training": torch.onnx.TrainingMode.PRESERVE} \
            if name == "resnet18" else {}
        torch.onnx.export(model, (x,), str(legacy), dynamo=False, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, **keep_bn)
        out[name, "legacy"] = legacy, pytorch
    return out


def match_blocks(onnx_blocks, torch_blocks):
    """Pair each PyTorch block with the ONNX block of the same shape and head MACs (within 1 %), in order.

    The ONNX blocks are the PyTorch ones, or more: an ONNX graph has no module boundaries, so a PyTorch block
    without a skip connection shows as one ONNX block per layer in it."""
    pairs, k = [], 0
    for t in torch_blocks:
        while k < len(onnx_blocks) and not (onnx_blocks[k].shape == t.shape
                                            and abs(onnx_blocks[k].macs - t.macs) <= 0.01 * t.macs):
            k += 1
        assert k < len(onnx_blocks), f"no ONNX block for PyTorch block {t.name} {t.shape} {t.macs}"
        pairs.append((onnx_blocks[k], t))
        k += 1
    return pairs


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_block_cuts_match_the_pytorch_analysis(exports, name, exporter):
    path, pytorch = exports[name, exporter]
    if exporter == "dynamo":
        assert Path(f"{path}.data").is_file()  # the default exporter writes external data
    a = analyse_onnx(path)
    pairs = match_blocks(a.blocks, pytorch.blocks)
    if name == "resnet18":
        assert len(a.blocks) == len(pytorch.blocks) == 10
        assert [o for o, _ in pairs] == a.blocks
    else:  # the inverted residuals without a skip (features.1, .2, .4, .7, .9) split per layer
        assert len(pytorch.blocks) == 15 and len(a.blocks) == 28
    for o, t in pairs:
        assert o.shape == t.shape and abs(o.macs - t.macs) <= 0.01 * t.macs, (o, t)
    assert abs(a.total_macs - pytorch.total_macs) <= 0.01 * pytorch.total_macs
    assert a.layers == onnx_cut_points(path, granularity="layer")


def test_resnet18_every_block_cut_splits_exactly(exports):
    path, _ = exports["resnet18", "dynamo"]
    a = analyse_onnx(path)
    whole = onnx.load(str(path))
    names = [c.name for c in a.blocks]
    x = np.random.default_rng(0).standard_normal((2, 3, IMG, IMG)).astype(np.float32)
    outputs = _run(_with_outputs(whole, names), {a.input_name: x})
    logits, inside = outputs[0], dict(zip(names, outputs[1:], strict=True))
    for cut in a.blocks:
        head, tail = split_onnx(a, cut.name)
        assert head.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        assert tail.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        (h,) = _run(head, {a.input_name: x})
        (y,) = _run(tail, {cut.name: h})
        assert np.abs(h - inside[cut.name]).max() <= 1e-5, cut.name
        assert np.abs(y - logits).max() <= 1e-5, cut.name
    with pytest.raises(CutError) as e:
        a.resolve("relu_1")  # inside layer1.0: its input (the stem's relu) crosses too
    assert str(e.value) == ("cut 'relu_1' would send 2 tensors (relu, relu_1), e.g. inside a residual block; "
                            "nearest legal cuts: relu, relu_2")
    with pytest.raises(CutError, match=r"'relu_99' is not a tensor of .*resnet18.onnx \(closest: relu_9"):
        a.resolve("relu_99")


def test_missing_external_data_of_a_real_export(exports, tmp_path):
    path, _ = exports["resnet18", "dynamo"]
    alone = tmp_path / path.name
    shutil.copy(path, alone)
    with pytest.raises(ModelError) as e:
        analyse_onnx(alone)
    assert str(e.value).startswith(f"{alone}: external data file 'resnet18.onnx.data' is missing (tensor ")
