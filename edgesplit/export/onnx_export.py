"""PyTorch head -> ONNX (FP32, dynamic batch) and FP32 ONNX -> a genuine FP16 graph."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from edgesplit.errors import ExportError

INPUT_NAME = "input"
OUTPUT_NAME = "features"


def export_onnx(head: nn.Module, example: torch.Tensor, path: str | Path, opset: int = 18) -> Path:
    """Export `head` with torch.onnx's dynamo exporter: one file, batch axis dynamic, checker clean."""
    path = Path(path)
    _dynamo_export(head.eval(), example, path, [OUTPUT_NAME], opset)
    check(path)
    return path


def _dynamo_export(module: nn.Module, example: torch.Tensor, path: Path, output_names: list[str], opset: int) -> None:
    """torch.onnx's dynamo exporter into one file, input `INPUT_NAME` with a dynamic batch axis; its chatter
    silenced, its failures turned into one-line ExportErrors."""
    arg_name = next(iter(_forward_args(module)), "x")
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter chatter; failures still raise
            torch.onnx.export(module, (example,), str(path), input_names=[INPUT_NAME], output_names=output_names,
                              dynamic_shapes={arg_name: {0: batch}}, opset_version=opset, dynamo=True,
                              external_data=False, verbose=False)
    except Exception as exc:
        raise ExportError(_export_failure(exc)) from None


def _forward_args(module: nn.Module) -> list[str]:
    import inspect

    return [p for p in inspect.signature(module.forward).parameters if p != "self"]


def _export_failure(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    ops = re.findall(r"aten[._]{1,2}[A-Za-z0-9_]+", text)
    if ops:
        op = ops[0].replace("aten_", "aten.", 1) if ops[0].startswith("aten_") else ops[0]
        return (f"torch.onnx cannot convert operator {op} in this head: cut before it (or after it, so the "
                f"device does not run it), or replace the operator")
    return f"torch.onnx could not export this head ({type(exc).__name__}: {text[:200]})"


def check(path: str | Path) -> None:
    """onnx.checker with shape inference; ExportError naming the problem if the graph is invalid."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{Path(path).name} fails onnx.checker ({str(exc).splitlines()[0][:200]})") from None


def convert_fp16(src: str | Path, dst: str | Path) -> Path:
    """Weights and activations to float16, inputs and outputs included (onnxconverter-common)."""
    from onnxconverter_common import float16

    model = onnx.load(str(src))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about values clamped to the fp16 range
        half = float16.convert_float_to_float16(model, keep_io_types=False, disable_shape_infer=False)
    onnx.save(half, str(dst))
    check(dst)
    return Path(dst)


class WholeGraph:
    """A PyTorch model exported once as a whole, with every cut tensor named after its PyTorch cut: each head
    and tail of a sweep is cut from this one graph (`sources.GraphHead.from_torch`)."""

    def __init__(self, path: Path, analysis, cuts: dict, spec) -> None:
        from edgesplit.digest import sha256_file
        from edgesplit.export.graph_reference import GraphReference

        self.path, self.analysis, self._cuts, self.spec = path, analysis, cuts, spec
        self.sha256 = sha256_file(path)
        self.reference = GraphReference(analysis, [c.name for c in cuts.values()])  # shared by the cuts' heads

    def __contains__(self, cut: str) -> bool:
        return cut in self._cuts

    def tensor_of(self, cut: str) -> str:
        return self._cuts[cut].name  # the tensor carries the cut's own name

    def cut_point(self, cut: str):
        return self._cuts[cut]


def export_whole_model(model: nn.Module, cuts: list, path: str | Path, opset: int = 18) -> WholeGraph:
    """Export `model` once, its FP32 graph naming every tensor of `cuts` (PyTorch CutPoints) after its cut.

    The model's fx graph gets the cut tensors as extra outputs, torch.onnx names them (output_names), and the
    extra outputs are dropped again: the tensors keep their names inside the graph. A cut the ONNX analysis
    does not find legal (an exporter that fused across it) is left out: `name in whole` says which remain.
    """
    import torch.fx as fx

    from edgesplit.models import analyse
    from edgesplit.models.onnx_cuts import analyse_onnx

    path = Path(path)
    spec = model.edgesplit_spec
    shape = (spec.in_chans, spec.img_size, spec.img_size)
    example = torch.zeros(1, *shape)
    traced = analyse(model.eval(), example).traced.gm
    graph, env = fx.Graph(), {}
    for node in traced.graph.nodes:
        if node.op == "output":
            result = fx.node.map_arg(node.args[0], lambda n: env[n.name])
            continue
        env[node.name] = graph.node_copy(node, lambda n: env[n.name])
    named = [c for c in cuts if c.node in env and env[c.node] is not result]
    graph.output((result, *[env[c.node] for c in named]))
    wrapped = fx.GraphModule(traced, graph).eval()
    _dynamo_export(wrapped, example, path, ["logits", *[c.name for c in named]], opset)
    proto = onnx.load(str(path))
    keep = [o for o in proto.graph.output if o.name == "logits"]
    del proto.graph.output[:]
    proto.graph.output.extend(keep)
    onnx.save(proto, str(path))
    check(path)
    analysis = analyse_onnx(path, shape)
    legal = {c.name for c in analysis.layers}
    return WholeGraph(path, analysis, {c.name: c for c in named if c.name in legal}, spec)
