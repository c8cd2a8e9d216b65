"""Cut points of any ONNX image model: the tensors where a graph can be split so that only that tensor crosses.

    analysis = analyse_onnx("model.onnx", input_shape=(3, 64, 64))
    analysis.blocks                      # CutPoints, block granularity (as `models.cuts.analyse` gives them)
    analysis.resolve("relu_3")           # a legal tensor's CutPoint, or a CutError saying why not

A tensor is a legal cut when, in the graph's topological node order, it is the only data-dependent value
computed up to its node that is still needed after it (graph outputs count as needed). Values that do not
depend on the graph input (initializers, Constant nodes, anything computed only from them) are weights: the
tail holds or recomputes them, they never cross. Costs are those of the head, the nodes the tensor depends
on: MACs counted from shapes (Conv, ConvTranspose, Gemm, MatMul), parameters = elements of the initializers
and Constant values the head uses, each counted once (int64 shape and axes operands left out). A graph
whose BatchNorm the exporter folded into the convolutions has fewer parameters than its PyTorch source
(a conv bias instead of the BatchNorm's weight and bias); MACs and shapes are the same.

Block granularity collapses runs of element-wise nodes (activations, normalisations, Add/Mul..., Cast) onto
the op that feeds them (the block cut is the run's last tensor; a residual join's Add so collapses onto the
activation after it), and reshape-only nodes (Flatten, Reshape, Squeeze, Unsqueeze, Identity) backwards (the
block cut stays at the tensor before them, as `models.blocks` drops reshape-only modules). An ONNX graph has
no module boundaries, so a PyTorch block without a skip connection (e.g. MobileNet's inverted residual with
stride 2) shows as several ONNX blocks, one per layer inside it: the PyTorch blocks are a subsequence of these.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import onnx

from edgesplit.errors import CutError, ModelError, closest
from edgesplit.models.cutpoint import GRANULARITIES, CutPoint
from edgesplit.models.onnx_graph import batch1_shapes, graph_input, load_onnx_model, prepare_onnx_model
from edgesplit.vocab import BYTES_PER_VALUE

# Nodes that finish the layer before them: activations, normalisations, element-wise arithmetic, casts.
ELEMENTWISE = frozenset({
    "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu",
    "Mish", "Softplus", "Softsign", "Tanh", "ThresholdedRelu", "Shrink", "Swish", "Erf", "Exp", "Log", "Abs", "Neg",
    "Sqrt", "Reciprocal", "Pow", "Floor", "Ceil", "Round", "Sign", "Not", "Add", "Sub", "Mul", "Div", "Max", "Min",
    "Sum", "Mean", "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
    "LpNormalization", "Dropout", "Identity", "Cast", "CastLike", "QuantizeLinear", "DequantizeLinear",
})
# Nodes that only rename or reshape: a cut after them sends what the cut before them sends.
RESHAPE_ONLY = frozenset({"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity"})
_INT64 = onnx.TensorProto.INT64
_SHOWN = 4  # crossing tensors named in an error before "..."


@dataclass
class OnnxCutAnalysis:
    """All cut candidates of one ONNX graph; resolves tensor names to legal cuts or explains why not."""

    model: onnx.ModelProto  # checked and shape-inferred (dynamic dims fixed); external weights not loaded
    source: str  # the file (or "the ONNX model") named in messages
    folder: str | None  # where the model's external data files are (the file's folder), None: in memory
    input_name: str
    input_shape: tuple[int, ...]  # per-sample input shape
    blocks: list[CutPoint]
    layers: list[CutPoint]
    total_params: int
    total_macs: int
    _facts: _Facts = field(repr=False)

    def all(self, granularity: str) -> list[CutPoint]:
        if granularity not in GRANULARITIES:
            raise ModelError(f"unknown granularity {granularity!r}: use one of {', '.join(GRANULARITIES)}")
        return self.blocks if granularity == "block" else self.layers

    def resolve(self, name: str) -> CutPoint:
        """The legal cut at tensor `name` (exact ONNX tensor name); a CutError with the nearest legal ones if none."""
        for cut in self.layers:
            if cut.name == name:
                return cut
        f = self._facts
        hint = "'edgesplit cuts MODEL.onnx --granularity layer' lists the legal ones"
        if name not in f.producer and name != self.input_name:
            if name in f.weights:
                raise CutError(f"{name!r} is a weight of {self.source} (it does not depend on the input), not a cut; "
                               f"{hint}")
            raise CutError(f"{name!r} is not a tensor of {self.source} ({closest(name, f.data_names())}); {hint}")
        if name not in f.data:
            raise CutError(f"{name!r} is computed from weights only (it does not depend on the input), not a cut; "
                           f"{hint}")
        first = ", ".join(c.name for c in self.blocks[:3])
        if name == self.input_name:
            raise CutError(f"{name!r} is the graph input: the head would be empty; cut after it, e.g. {first}")
        if name in f.outputs:
            raise CutError(f"{name!r} is an output of {self.source}: the tail would be empty; {hint}")
        index = f.producer[name]
        crossing = f.crossing[index]
        if crossing == (name,):
            raise CutError(f"ONNX shape inference found no shape for {name!r}; pass --input CxHxW, or cut elsewhere")
        if name not in crossing:
            raise CutError(f"{name!r} is not needed by the outputs of {self.source}; {hint}")
        shown = ", ".join(crossing[:_SHOWN]) + (", ..." if len(crossing) > _SHOWN else "")
        before = [c.name for c in self.blocks if c.index < index][-1:]
        after = [c.name for c in self.blocks if c.index > index][:1]
        near = ", ".join(before + after) or first or "none (no single tensor crosses anywhere)"
        raise CutError(f"cut {name!r} would send {len(crossing)} tensors ({shown}), e.g. inside a residual block; "
                       f"nearest legal cuts: {near}")


@dataclass
class _Facts:
    """The graph's facts the cut rules read, by node position in topological order."""

    nodes: list[onnx.NodeProto]
    producer: dict[str, int]  # value -> index of the node computing it
    data: set[str]  # values that depend on the graph input (the input included)
    weights: set[str]  # initializer names
    outputs: set[str]
    crossing: list[tuple[str, ...]]  # data values computed up to node i and still needed after it
    shapes: dict[str, tuple[int, ...] | None]  # batch-1 shapes

    def data_names(self) -> list[str]:
        return [name for node in self.nodes for name in node.output if name in self.data]


def analyse_onnx(model_or_path: onnx.ModelProto | str | os.PathLike, input_shape: tuple[int, int, int] | None = None,
                 *, base_dir: str | os.PathLike | None = None) -> OnnxCutAnalysis:
    """Load (a path) or check (a ModelProto) the model, infer its shapes and list its block and layer cuts.

    `input_shape` (C, H, W) fixes dynamic input dims; a model with dynamic H/W needs it. A ModelProto whose
    weights are in external files not loaded needs `base_dir`, their folder (`prepare_onnx_model`).
    """
    if isinstance(model_or_path, onnx.ModelProto):
        source = "the ONNX model"
        folder = None if base_dir is None else str(base_dir)
        return analyse_loaded(prepare_onnx_model(model_or_path, input_shape, source, folder), source, folder)
    model = load_onnx_model(model_or_path, input_shape)
    return analyse_loaded(model, str(model_or_path), folder=os.path.dirname(os.path.abspath(model_or_path)))


def analyse_loaded(model: onnx.ModelProto, source: str = "the ONNX model",
                   folder: str | None = None) -> OnnxCutAnalysis:
    """`analyse_onnx` for a model `load_onnx_model` or `prepare_onnx_model` returned (checked, shapes inferred)."""
    facts = _facts(model)
    nodes = facts.nodes
    macs = [_macs(node, facts.shapes) if any(o in facts.data for o in node.output) else 0 for node in nodes]
    sizes = _weight_sizes(model, facts)
    numel_of = {key: n for s in sizes for key, n in s.items()}
    ancestors = _ancestors(nodes, facts.producer)

    def make(name: str, index: int, is_block: bool) -> CutPoint:
        shape = _per_sample(facts.shapes[name])
        head = _members(ancestors[index])
        used = {key for j in head for key in sizes[j]}
        numel = 1
        for d in shape:
            numel *= d
        return CutPoint(name=name, index=index, node=_node_name(nodes[index], index), shape=shape,
                        params=sum(numel_of[k] for k in used), macs=sum(macs[j] for j in head),
                        payload_bytes={k: numel * b for k, b in BYTES_PER_VALUE.items()}, is_block=is_block)

    for name in facts.data_names():
        if 0 in (facts.shapes.get(name) or (1,)):
            empty = "x".join(map(str, _per_sample(facts.shapes[name])))
            raise ModelError(f"{source}: tensor {name!r} would be empty ({empty}) for this input; check --input")
    legal = [(name, i) for i, node in enumerate(nodes) for name in node.output
             if facts.crossing[i] == (name,) and name not in facts.outputs and facts.shapes.get(name) is not None]
    block_names = _blocks(legal, nodes, facts)
    layers = [make(name, i, name in block_names) for name, i in legal]
    name = graph_input(model, source).name
    return OnnxCutAnalysis(
        model=model, source=source, folder=folder, input_name=name, input_shape=_per_sample(facts.shapes.get(name)),
        blocks=[c for c in layers if c.is_block], layers=layers,
        total_params=sum(numel_of.values()), total_macs=sum(macs), _facts=facts)


def onnx_cut_points(model_or_path, input_shape=None, granularity: str = "block") -> list[CutPoint]:
    """The legal cuts of an ONNX model, in graph order (`analyse_onnx(...).all(granularity)`)."""
    return analyse_onnx(model_or_path, input_shape).all(granularity)


def _facts(model: onnx.ModelProto) -> _Facts:
    graph = model.graph
    nodes = list(graph.node)
    weights = {t.name for t in graph.initializer}
    input_name = graph_input(model).name
    producer: dict[str, int] = {}
    data = {input_name}
    last_use: dict[str, int] = {}
    for i, node in enumerate(nodes):
        inputs = _inputs(node)
        for name in inputs:
            last_use[name] = i
        for name in node.output:
            if name:
                producer[name] = i
                if any(x in data for x in inputs):
                    data.add(name)
    outputs = {o.name for o in graph.output}
    for name in outputs:
        last_use[name] = len(nodes)
    live = {input_name: None} if last_use.get(input_name, -1) >= 0 else {}
    crossing = []
    for i, node in enumerate(nodes):
        for name in node.output:
            if name in data and last_use.get(name, -1) > i:
                live[name] = None
        live = {name: None for name in live if last_use[name] > i}
        crossing.append(tuple(live))
    return _Facts(nodes, producer, data, weights, outputs, crossing, batch1_shapes(model))


def _inputs(node: onnx.NodeProto) -> list[str]:
    """A node's inputs, with the outer-scope values its subgraphs (If, Loop, Scan) read."""
    names = [n for n in node.input if n]
    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else list(attr.graphs)):
            local = {v.name for v in g.input} | {t.name for t in g.initializer}
            for inner in g.node:
                names.extend(n for n in _inputs(inner) if n not in local)
                local.update(inner.output)
    return names


def _blocks(legal: list[tuple[str, int]], nodes: list[onnx.NodeProto], facts: _Facts) -> set[str]:
    """Which legal tensors are block cuts: element-wise runs collapse forwards, reshape-only runs backwards."""
    kinds = []  # what computes each legal tensor from the one before (the graph input before the first)
    start = -1
    for _, i in legal:
        ops = {n.op_type for n in nodes[start + 1:i + 1] if any(o in facts.data for o in n.output)}
        kinds.append("reshape" if ops <= RESHAPE_ONLY else "elementwise" if ops <= ELEMENTWISE | RESHAPE_ONLY
                     else "compute")
        start = i
    out = set()
    for k, (name, _) in enumerate(legal):
        if kinds[k] == "reshape":
            continue  # the cut before it sends the same values
        if k + 1 < len(legal) and kinds[k + 1] == "elementwise":
            continue  # the run goes on: its last tensor is the block cut
        out.add(name)
    return out


def _macs(node: onnx.NodeProto, shapes: dict) -> int:
    """Multiply-accumulates of one node (batch-1 shapes, so per sample); 0 for ops not counted or unknown shapes."""
    if node.domain not in ("", "ai.onnx"):
        return 0
    op = node.op_type

    def shape(k: int):
        return shapes.get(node.input[k]) if len(node.input) > k and node.input[k] else None

    out = shapes.get(node.output[0]) if node.output else None
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        w = shape(3 if op == "QLinearConv" else 1)
        return _prod(out) * _prod(w[1:]) if out is not None and w else 0
    if op == "ConvTranspose":
        x, w = shape(0), shape(1)
        return _prod(x) * _prod(w[1:]) if x is not None and w else 0
    if op == "Gemm":
        b = shape(1)
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        return _prod(out) * b[1 if trans_b else 0] if out is not None and b and len(b) == 2 else 0
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        a = shape(0)
        return _prod(out) * a[-1] if out is not None and a else 0
    return 0


def _weight_sizes(model: onnx.ModelProto, facts: _Facts) -> list[dict[str, int]]:
    """Per node: the weights it holds (initializers it reads, its own Constant value) and their element counts.

    int64 tensors are left out: in ONNX they are shape, axes and index operands, not parameters.
    """
    init = {t.name: _prod(t.dims) for t in model.graph.initializer if t.data_type != _INT64}
    out = []
    for i, node in enumerate(facts.nodes):
        sizes = {name: init[name] for name in _inputs(node) if name in init}
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and not _is_int64(node):
            sizes[f"#constant:{i}"] = _prod(facts.shapes.get(node.output[0]) or ())
        out.append(sizes)
    return out


def _is_int64(constant: onnx.NodeProto) -> bool:
    for a in constant.attribute:
        if a.name in ("value_int", "value_ints"):
            return True
        if a.name == "value" and a.t.data_type == _INT64:
            return True
    return False


def _ancestors(nodes: list[onnx.NodeProto], producer: dict[str, int]) -> list[int]:
    """Per node: a bit set of the nodes it depends on, itself included (what a head ending there contains)."""
    out: list[int] = []
    for i, node in enumerate(nodes):
        bits = 1 << i
        for name in _inputs(node):
            j = producer.get(name)
            if j is not None and j < i:
                bits |= out[j]
        out.append(bits)
    return out


def _members(bits: int) -> list[int]:
    # the positions of a bit set's ones, in one pass over its binary text (fast for thousands of nodes)
    return [j for j, b in enumerate(bin(bits)[:1:-1]) if b == "1"]


def _per_sample(full: tuple[int, ...] | None) -> tuple[int, ...]:
    # batch-1 shape -> per-sample shape (a tensor whose dim 0 is not the batch is kept whole)
    full = tuple(full or ())
    return full[1:] if full and full[0] == 1 else full


def _prod(values) -> int:
    n = 1
    for v in values or ():
        n *= int(v)
    return n


def _node_name(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"
