"""`split_onnx(model, cut) -> (head, tail)`: an ONNX graph cut in two at one legal tensor, by onnx's own extractor.

    head, tail = split_onnx("model.onnx", "relu_8")
    # onnxruntime: tail(head(x)) == model(x); head(x) == the model's tensor relu_8

The head runs the graph input to the cut tensor, the tail the cut tensor to the graph's outputs. Both keep the
model's IR version and opsets, pass `onnx.checker`, and keep a dynamic batch dim where the model has one (the
head's input and output, the tail's input). Which nodes each half holds is `onnx.utils.Extractor`'s work;
this module only checks that the cut is legal (`models.onnx_cuts`) and gives the cut tensor its batch dim.
"""

from __future__ import annotations

import os

import onnx
from onnx.utils import Extractor

from edgesplit.errors import ModelError
from edgesplit.models.cutpoint import CutPoint
from edgesplit.models.onnx_cuts import OnnxCutAnalysis, analyse_onnx
from edgesplit.models.onnx_graph import external_tensors, first_line, graph_input, load_external_data

_DEFAULT_BATCH = "batch"


def split_onnx(model: onnx.ModelProto | OnnxCutAnalysis | str | os.PathLike, cut_tensor: str | CutPoint, *,
               input_shape: tuple[int, int, int] | None = None,
               base_dir: str | os.PathLike | None = None) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Split `model` (a path, a ModelProto, or an `analyse_onnx` result) at the legal tensor `cut_tensor`.

    An illegal or unknown tensor raises the CutError `OnnxCutAnalysis.resolve` gives (crossing tensors and the
    nearest legal cuts). `input_shape` (C, H, W) fixes dynamic input dims, as for `analyse_onnx`.

    Memory: the extraction runs on the graph without its external weights (small, and no 2 GiB protobuf limit);
    each half then reads its own weights from the external data files (`base_dir`, the model file's folder
    for a path). The two halves returned hold the weights they use in memory: about the model's weight size
    in all (more only for weights both halves use). A ModelProto with external data needs `base_dir`. The
    checker runs on each half in memory, so on halves under 2 GiB only (save a larger one with external data
    and check it by path).
    """
    if isinstance(model, OnnxCutAnalysis):
        analysis = model
    else:
        analysis = analyse_onnx(model, input_shape, base_dir=base_dir)
    folder = str(base_dir) if base_dir is not None else analysis.folder
    source = analysis.source
    if external_tensors(analysis.model) and folder is None:
        raise ModelError(f"{source} keeps weights in external data files: pass base_dir (the folder they are in)")
    cut = analysis.resolve(cut_tensor.name if isinstance(cut_tensor, CutPoint) else cut_tensor)
    graph = analysis.model.graph
    _give_batch_dim(graph, cut.name, graph_input(analysis.model, source))
    try:
        extractor = Extractor(analysis.model)
        head = extractor.extract_model([analysis.input_name], [cut.name])
        tail = extractor.extract_model([cut.name], [o.name for o in graph.output])
    except Exception as exc:  # Extractor asserts and raises ValueError on graphs it cannot cut
        raise ModelError(f"cannot split {source} at {cut.name!r} ({type(exc).__name__}: {first_line(exc)})") \
            from None
    for half, part in ((head, "head"), (tail, "tail")):
        _drop_io_value_info(half)
        half.graph.name = f"{graph.name or 'model'} {part} (cut at {cut.name})"
        if folder is not None:
            load_external_data(half, folder, source)
        if half.ByteSize() < onnx.checker.MAXIMUM_PROTOBUF:
            try:
                onnx.checker.check_model(half, full_check=True)
            except Exception as exc:
                raise ModelError(f"the {part} of {source} cut at {cut.name!r} fails the ONNX checker "
                                 f"({type(exc).__name__}: {first_line(exc)})") from None
    return head, tail


def _give_batch_dim(graph: onnx.GraphProto, name: str, image: onnx.ValueInfoProto) -> None:
    """The cut tensor's dim 0 becomes the input's batch dim (a symbol when dynamic: the halves keep any batch)."""
    infos = [v for v in graph.value_info if v.name == name]
    if not infos or not infos[0].type.tensor_type.shape.dim:
        raise ModelError(f"ONNX shape inference found no shape for {name!r}; pass --input CxHxW, or cut elsewhere")
    batch = image.type.tensor_type.shape.dim[0]
    dim = infos[0].type.tensor_type.shape.dim[0]
    dim.Clear()
    if batch.HasField("dim_value"):
        dim.dim_value = batch.dim_value
    else:
        dim.dim_param = batch.dim_param or _DEFAULT_BATCH


def _drop_io_value_info(model: onnx.ModelProto) -> None:
    # Extractor repeats the halves' inputs and outputs in value_info; a value is described once.
    io = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    for k in reversed(range(len(model.graph.value_info))):
        if model.graph.value_info[k].name in io:
            del model.graph.value_info[k]
