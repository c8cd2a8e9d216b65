"""Make an ONNX head emit its wire format: int8 with scale/zero-point, fp16 or fp32.

For a QDQ head whose output is already quantized, the last DequantizeLinear is dropped so the
8-bit tensor itself leaves the device; otherwise a QuantizeLinear (or Cast) is appended.

An appended QuantizeLinear is per tensor (one scale, one zero-point) except after a float MaxPool. There
onnxruntime's QDQPropagationTransformer moves a per-tensor QuantizeLinear (constant scalar scale) up through the
MaxPool and the data-movement ops after it, the MaxPool then runs on 8-bit values, and its 8-bit NCHW kernel is
far slower than the float one it replaces (resnet18 cut at maxpool, 224 px, 1 thread on an AVX-512 VNNI host:
FP32 head 2.19 ms, with the per-tensor wire 5.62 ms, with the per-axis form 2.21 ms). So after a float MaxPool
the same scale and zero-point are written once per channel (axis 1): the values on the wire are identical, the
manifest's wire record is unchanged, and onnxruntime leaves the MaxPool float (it propagates scalar scales only).
TensorRT takes per-tensor activation scales only, so heads built for it keep the per-tensor form.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgesplit.errors import ExportError
from edgesplit.export.onnx_export import OUTPUT_NAME
from edgesplit.export.wire import WireFormat, int8_params

_ELEM = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.UINT8: "uint8",
         TensorProto.INT8: "int8"}
_PROTO = {v: k for k, v in _ELEM.items()}


def output_dtype(model: onnx.ModelProto) -> str:
    elem = model.graph.output[0].type.tensor_type.elem_type
    if elem not in _ELEM:
        raise ExportError(f"head output has ONNX element type {elem}; expected float, float16 or 8-bit")
    return _ELEM[elem]


def set_wire(model: onnx.ModelProto, wire: str, out_range: tuple[float, float] | None,
             int8_dtype: str, symmetric: bool, per_axis_ok: bool = True) -> tuple[onnx.ModelProto, WireFormat]:
    """Rewrite the graph's single output to `wire`; `out_range` (calibrated) is needed for a new int8 output.
    `per_axis_ok`: the runtime takes a per-channel QuantizeLinear of an activation (False for TensorRT)."""
    graph = model.graph
    if len(graph.output) != 1:
        raise ExportError(f"a head must have one output, this one has {len(graph.output)}")
    current = output_dtype(model)
    if wire == "int8":
        stripped = _strip_final_dequantize(model)
        if stripped is not None:
            return model, stripped
        if out_range is None:
            raise ExportError("an int8 wire needs the output's calibrated range: pass calibration data")
        scale, zero_point = int8_params(*out_range, dtype=int8_dtype, symmetric=symmetric)
        src = _rename_output(model, f"{OUTPUT_NAME}_float")
        if current == "float16":
            graph.node.append(helper.make_node("Cast", [src], [f"{src}_fp32"], to=TensorProto.FLOAT))
            src = f"{src}_fp32"
        channels = _channels(model) if per_axis_ok and _after_float_maxpool(model, src) else None
        shape, axis = ((), {}) if channels is None else ((channels,), {"axis": 1})
        graph.initializer.extend([
            numpy_helper.from_array(np.full(shape, scale, dtype=np.float32), f"{OUTPUT_NAME}_wire_scale"),
            numpy_helper.from_array(np.full(shape, zero_point, dtype=np.dtype(int8_dtype)),
                                    f"{OUTPUT_NAME}_wire_zero_point"),
        ])
        graph.node.append(helper.make_node("QuantizeLinear", [src, f"{OUTPUT_NAME}_wire_scale",
                                                              f"{OUTPUT_NAME}_wire_zero_point"], [OUTPUT_NAME],
                                           **axis))
        _set_output_type(model, int8_dtype)
        return model, WireFormat("int8", int8_dtype, scale, zero_point)
    target = {"fp32": "float32", "fp16": "float16"}[wire]
    if current in ("uint8", "int8"):
        raise ExportError("the head already emits 8-bit values; export it again with the wire you want")
    if current != target:
        src = _rename_output(model, f"{OUTPUT_NAME}_{current}")
        graph.node.append(helper.make_node("Cast", [src], [OUTPUT_NAME], to=_PROTO[target]))
        _set_output_type(model, target)
    return model, WireFormat(wire, target)


def _strip_final_dequantize(model: onnx.ModelProto) -> WireFormat | None:
    graph = model.graph
    producer = next((n for n in graph.node if OUTPUT_NAME in n.output), None)
    if producer is None or producer.op_type != "DequantizeLinear":
        return None
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    scale, zero = (inits.get(name) for name in (producer.input[1], producer.input[2] if len(producer.input) > 2
                                                  else ""))
    if scale is None or zero is None or scale.size != 1 or zero.size != 1:
        return None  # per-channel or computed parameters: requantize per tensor instead
    dtype = str(zero.dtype)
    if dtype not in ("uint8", "int8"):
        return None
    quantized = producer.input[0]
    graph.node.remove(producer)
    graph.node.append(helper.make_node("Identity", [quantized], [OUTPUT_NAME], name="wire_output"))
    _set_output_type(model, dtype)
    return WireFormat("int8", dtype, float(scale.reshape(())), int(zero.reshape(())))


# What onnxruntime's QDQPropagationTransformer moves a QuantizeLinear up through besides MaxPool (each only while
# the tensor has one consumer and is not a graph output); in 8 bits they cost what they cost in float. Identity
# is removed by onnxruntime before, so it is looked through too.
_MOVES_DATA = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Identity"})


def _after_float_maxpool(model: onnx.ModelProto, name: str) -> bool:
    """True when a per-tensor QuantizeLinear of `name` would be moved by onnxruntime up to the input of a MaxPool
    fed by float values (no DequantizeLinear before it): see the module's docstring."""
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    uses = Counter(i for node in graph.node for i in node.input)
    outputs = {o.name for o in graph.output}
    while (node := producers.get(name)) is not None and node.input:
        if node.op_type == "MaxPool":
            before = producers.get(node.input[0])
            return before is None or before.op_type != "DequantizeLinear"
        name = node.input[0]
        if node.op_type not in _MOVES_DATA or uses[name] != 1 or name in outputs:
            return False
    return False


def _channels(model: onnx.ModelProto) -> int | None:
    """The output's channel count (axis 1) where a per-channel QuantizeLinear can be written (opset 13 and later,
    a static channel dimension), else None."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    dims = model.graph.output[0].type.tensor_type.shape.dim
    if opset < 13 or len(dims) < 2 or not dims[1].HasField("dim_value") or dims[1].dim_value < 1:
        return None
    return int(dims[1].dim_value)


def _rename_output(model: onnx.ModelProto, new: str) -> str:
    """Rename the tensor currently called OUTPUT_NAME to `new` everywhere; return `new`."""
    for node in model.graph.node:
        node.output[:] = [new if o == OUTPUT_NAME else o for o in node.output]
        node.input[:] = [new if i == OUTPUT_NAME else i for i in node.input]
    return new


def _set_output_type(model: onnx.ModelProto, dtype: str) -> None:
    model.graph.output[0].type.tensor_type.elem_type = _PROTO[dtype]
    for vi in list(model.graph.value_info):
        if vi.name == OUTPUT_NAME:
            model.graph.value_info.remove(vi)
