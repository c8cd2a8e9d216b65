"""Shipped ONNX files made wrong on purpose, shared by the models', the CLI's and the sweep's tests."""

from pathlib import Path

import onnx


def with_dynamic_hw(source: Path, folder: Path) -> Path:
    """A copy of `source` (weights inline) whose input height and width are symbols: shape inference needs
    --input to fix them."""
    model = onnx.load(str(source))
    for k, name in ((2, "height"), (3, "width")):
        dim = model.graph.input[0].type.tensor_type.shape.dim[k]
        dim.Clear()
        dim.dim_param = name
    del model.graph.value_info[:]
    path = folder / "dynamic_hw.onnx"
    onnx.save(model, str(path))
    return path
