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
    head = head.eval()
    arg_name = next(iter(_forward_args(head)), "x")
    batch = torch.export.Dim("batch", min=1, max=4096)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter chatter; failures still raise
            torch.onnx.export(head, (example,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_shapes={arg_name: {0: batch}}, opset_version=opset, dynamo=True,
                              external_data=False, verbose=False)
    except Exception as exc:
        raise ExportError(_export_failure(exc)) from None
    check(path)
    return path


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
