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
    analysis = _analysis(model, input_shape, base_dir)
    cut = analysis.resolve(cut_tensor.name if isinstance(cut_tensor, CutPoint) else cut_tensor)
    outputs = [o.name for o in analysis.model.graph.output]
    head, tail = _extract(analysis, [([analysis.input_name], [cut.name], "head"), ([cut.name], outputs, "tail")],
                          base_dir, f"at {cut.name!r}", cut_names=[cut.name])
    return head, tail


def extract_onnx(model: onnx.ModelProto | OnnxCutAnalysis | str | os.PathLike, outputs: list[str | CutPoint], *,
                 input_shape: tuple[int, int, int] | None = None,
                 base_dir: str | os.PathLike | None = None) -> onnx.ModelProto:
    """The graph from its image input to `outputs` (legal cut tensors, and any of the graph's own outputs) in one
    model: one onnxruntime run of it gives the features at several cuts at once. Cut tensors keep the input's
    batch dim; checks, weights and memory as for `split_onnx`."""
    analysis = _analysis(model, input_shape, base_dir)
    graph_outputs = {o.name for o in analysis.model.graph.output}
    names = [o.name if isinstance(o, CutPoint) else o for o in outputs]
    cuts = [analysis.resolve(n).name for n in names if n not in graph_outputs]
    (part,) = _extract(analysis, [([analysis.input_name], [*dict.fromkeys(names)], "reference graph")], base_dir,
                       f"at {', '.join(cuts) or 'its outputs'}", cut_names=cuts)
    return part


def _analysis(model, input_shape, base_dir) -> OnnxCutAnalysis:
    if isinstance(model, OnnxCutAnalysis):
        return model
    return analyse_onnx(model, input_shape, base_dir=base_dir)


def _extract(analysis: OnnxCutAnalysis, parts: list[tuple[list[str], list[str], str]], base_dir, where: str,
             cut_names: list[str]) -> list[onnx.ModelProto]:
    """Each (inputs, outputs, label) of `parts` extracted by onnx's Extractor, with its weights, checked."""
    folder = str(base_dir) if base_dir is not None else analysis.folder
    source = analysis.source
    if external_tensors(analysis.model) and folder is None:
        raise ModelError(f"{source} keeps weights in external data files: pass base_dir (the folder they are in)")
    graph = analysis.model.graph
    for name in cut_names:
        _give_batch_dim(graph, name, graph_input(analysis.model, source))
    try:
        extractor = Extractor(analysis.model)
        models = [extractor.extract_model(inputs, outputs) for inputs, outputs, _ in parts]
    except Exception as exc:  # Extractor asserts and raises ValueError on graphs it cannot cut
        raise ModelError(f"cannot split {source} {where} ({type(exc).__name__}: {first_line(exc)})") \
            from None
    for half, (_, _, part) in zip(models, parts, strict=True):
        _drop_io_value_info(half)
        half.graph.name = f"{graph.name or 'model'} {part} (cut at {', '.join(cut_names) or 'its outputs'})"
        if folder is not None:
            load_external_data(half, folder, source)
        if half.ByteSize() < onnx.checker.MAXIMUM_PROTOBUF:
            try:
                onnx.checker.check_model(half, full_check=True)
            except Exception as exc:
                raise ModelError(f"the {part} of {source} cut {where} fails the ONNX checker "
                                 f"({type(exc).__name__}: {first_line(exc)})") from None
    return models


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
