"""Loading an ONNX image model to cut it: the checker, external data, the input's dims and shape inference.

    model = load_onnx_model("model.onnx", input_shape=(3, 64, 64))    # a checked, shape-inferred ModelProto

Weights stay on disk: the model is loaded without its external data (only small integer tensors, the
shape operands of Reshape and friends, are read so that shape inference can follow them), so listing the
cuts of a multi-gigabyte model costs megabytes. `load_external_data` reads the rest when a caller needs
the values (splitting, running). Every problem is one line in a `ModelError`, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_tensor, uses_external_data

from edgesplit.errors import ModelError

_SHAPE_OPERAND_TYPES = (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
_SHAPE_OPERAND_MAX_BYTES = 1 << 20


def load_onnx_model(path: str | os.PathLike, input_shape: tuple[int, int, int] | None = None) -> onnx.ModelProto:
    """Load `path`, check it and infer every tensor's shape; `input_shape` (C, H, W) fixes the input's dynamic dims.

    External data files must lie beside the model (in its folder or below); a missing or truncated one, or
    one pointing outside the folder, is refused. The checker runs on the file (so models over 2 GiB work).
    The batch dim is kept as the file has it (usually dynamic). The result holds no external weight values:
    pass it with `folder=path.parent` to `load_external_data` to read them.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX file" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning-turned-errors, ValueError...
        raise ModelError(f"{path} is not an ONNX model ({type(exc).__name__}: {first_line(exc)})") from None
    check_external_data(model, path.parent, str(path))
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise ModelError(f"{path} fails the ONNX checker ({type(exc).__name__}: {first_line(exc)})") from None
    for tensor in external_tensors(model):  # shape operands (e.g. Reshape's target) for shape inference
        info = ExternalDataInfo(tensor)
        if tensor.data_type in _SHAPE_OPERAND_TYPES and (info.length or 0) <= _SHAPE_OPERAND_MAX_BYTES:
            load_external_data_for_tensor(tensor, str(path.parent))
    return _prepare(model, input_shape, str(path))


def prepare_onnx_model(model: onnx.ModelProto, input_shape: tuple[int, int, int] | None = None,
                       source: str = "the ONNX model", base_dir: str | os.PathLike | None = None) -> onnx.ModelProto:
    """`load_onnx_model` for a model in memory: the checker (in memory), input dims, shape inference.

    `model` itself is left as it is. A model whose weights are in external files not loaded (`onnx.load(...,
    load_external_data=False)`) needs `base_dir`, the folder of those files: they are checked as for a path.
    Shape inference serialises the model, so a model whose weights are loaded briefly takes twice its size.
    """
    if not isinstance(model, onnx.ModelProto):
        raise ModelError(f"expected an onnx.ModelProto or a path, got {type(model).__name__}")
    if external_tensors(model):
        if base_dir is None:
            raise ModelError(f"{source} keeps weights in external data files: pass base_dir (the folder they are in)")
        check_external_data(model, base_dir, source)
    try:
        onnx.checker.check_model(_without_external_weights(model))
    except Exception as exc:
        raise ModelError(f"{source} fails the ONNX checker ({type(exc).__name__}: {first_line(exc)})") from None
    return _prepare(model, input_shape, source)


def graph_input(model: onnx.ModelProto, source: str = "the ONNX model") -> onnx.ValueInfoProto:
    """The model's one graph input that is not an initializer (the image); anything else is a ModelError."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise ModelError(f"{source} has {len(inputs)} graph inputs ({names}); edgesplit cuts models with exactly "
                         f"one image input")
    return inputs[0]


def dims(value: onnx.ValueInfoProto) -> list[int | str | None] | None:
    """A value's dims: an int, the symbol of a named dynamic dim, or None for an unnamed one (None: no shape)."""
    t = value.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for d in t.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return out


def fixed_batch(model: onnx.ModelProto, name: str) -> str | None:
    """Why a model whose input takes batches of one size only cannot be exported or swept (None: its batch axis
    is dynamic): calibration, the fidelity check, emission and a sweep's tails run many images at once."""
    batch = (dims(graph_input(model)) or [None])[0]
    if not isinstance(batch, int):
        return None
    return (f"{name} takes batches of exactly {batch} (a fixed batch dim): calibration, the fidelity check and "
            f"emission run many images at once; export it with a dynamic batch axis "
            f"(torch.onnx.export(..., dynamic_shapes=...) or dynamic_axes)")


def batch1_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...] | None]:
    """Every tensor's shape (initializers included) with the batch dim fixed to 1; None where inference cannot tell.

    Inferred on a copy with the input's batch dim set to 1, so shape arithmetic (Shape -> Gather -> Reshape)
    comes out static. The copy holds what `model` holds: cheap for a model loaded without its external data.
    """
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.value_info[:]
    for value in probe.graph.output:
        value.type.tensor_type.ClearField("shape")
    batch = graph_input(probe).type.tensor_type.shape.dim[0]
    batch.Clear()
    batch.dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(probe, check_type=False, strict_mode=False, data_prop=True)
    out: dict[str, tuple[int, ...] | None] = {t.name: tuple(t.dims) for t in model.graph.initializer}
    graph = inferred.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        d = dims(info)
        if d is None or not all(isinstance(x, int) for x in d):
            out.setdefault(info.name, None)
        else:
            out.setdefault(info.name, tuple(d))
    return out


def external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """The tensors whose values live in external files: initializers and Constant nodes' values."""
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors.extend(a.t for a in node.attribute if a.HasField("t"))
    return [t for t in tensors if uses_external_data(t)]


def check_external_data(model: onnx.ModelProto, folder: str | os.PathLike, source: str) -> None:
    """Each external data file exists beside the model, inside `folder`, and is long enough; else a ModelError."""
    root = Path(folder).resolve()
    sizes: dict[Path, int] = {}
    for tensor in external_tensors(model):
        try:
            info = ExternalDataInfo(tensor)
        except ValueError as exc:
            raise ModelError(f"{source}: bad external data record of tensor {tensor.name!r} ({first_line(exc)})") \
                from None
        where = (root / info.location).resolve() if info.location else None
        if where is None or os.path.isabs(info.location) or not where.is_relative_to(root):
            raise ModelError(f"{source}: tensor {tensor.name!r} keeps its data at {info.location!r}, outside the "
                             f"model's folder; refused (re-save the model with its data file beside it)")
        if where not in sizes:
            if not where.is_file():
                raise ModelError(f"{source}: external data file {info.location!r} is missing (tensor "
                                 f"{tensor.name!r}); copy it into {root} beside the model, as the exporter wrote it")
            sizes[where] = where.stat().st_size
        end = (info.offset or 0) + (info.length or 0)
        if end > sizes[where]:
            raise ModelError(f"{source}: external data file {info.location!r} is truncated ({sizes[where]} bytes, "
                             f"tensor {tensor.name!r} ends at byte {end}); copy it again")


def load_external_data(model: onnx.ModelProto, folder: str | os.PathLike, source: str = "the ONNX model") -> None:
    """Read every external tensor of `model` from `folder` into memory (the model's weights: its file size)."""
    check_external_data(model, folder, source)
    for tensor in external_tensors(model):
        load_external_data_for_tensor(tensor, str(folder))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def _prepare(model: onnx.ModelProto, input_shape, source: str) -> onnx.ModelProto:
    value = graph_input(model, source)
    original = onnx.ValueInfoProto()
    original.CopyFrom(value)
    try:
        return _fix_input_and_infer(model, value, input_shape, source)
    finally:
        value.CopyFrom(original)  # the caller's model keeps its own input; the inferred copy has the fixed dims


def _fix_input_and_infer(model, value, input_shape, source: str) -> onnx.ModelProto:
    d = dims(value)
    if d is None or len(d) < 2:
        raise ModelError(f"{source}: input {value.name!r} has no batched tensor shape ({_text(d)}); edgesplit "
                         f"cuts image models with an input of N x C x H x W")
    if input_shape is not None:
        want = tuple(int(x) for x in input_shape)
        if len(d) != 4 or len(want) != 3:
            raise ModelError(f"{source}: input {value.name!r} is {_text(d)}; --input CxHxW needs a 4-d N x C x H x W "
                             f"input")
        for k, size in enumerate(want, start=1):
            if isinstance(d[k], int) and d[k] != size:
                raise ModelError(f"{source}: input {value.name!r} is {_text(d)}, not {'x'.join(map(str, want))}; "
                                 f"pass --input {'x'.join(map(str, d[1:]))} or leave it out")
            dim = value.type.tensor_type.shape.dim[k]
            dim.Clear()
            dim.dim_value = size
        d = dims(value)
    if not all(isinstance(x, int) for x in d[1:]):
        raise ModelError(f"{source}: input {value.name!r} has dynamic dims ({_text(d)}); pass --input CxHxW "
                         f"to fix them")
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise ModelError(f"{source}: ONNX shape inference failed ({type(exc).__name__}: {first_line(exc)}); "
                         f"check --input") from None


def _without_external_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model`, or for one with external initializers a copy where they are graph inputs (the checker run in
    memory would look for their files in the working folder; `check_external_data` has checked them)."""
    external = {t.name for t in external_tensors(model)}
    if not external:
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    inputs = {v.name for v in copy.graph.input}
    for k in reversed(range(len(copy.graph.initializer))):
        tensor = copy.graph.initializer[k]
        if tensor.name in external:
            if tensor.name not in inputs:
                copy.graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
            del copy.graph.initializer[k]
    return copy


def _text(d) -> str:
    return "no shape" if d is None else "x".join("?" if x is None else str(x) for x in d)
