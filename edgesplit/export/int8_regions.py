"""Which parts of a head to keep in float: measured kernel times mapped back to the float graph's nodes, and
the cheapest INT8/float labelling of those nodes when every switch between the two costs a conversion.

The float graph is the one `quantize_static` reads (`pre.onnx`: every node named, `name_nodes`). Its nodes are
grouped into **units**: a node plus the element-wise nodes onnxruntime fuses into it (Relu, Clip, HardSigmoid,
and a Mul of two tensors of the unit: hard-swish). A unit is INT8 or float as a whole.

Kernel times come from onnxruntime's profiler (`node_profile`) on the FP32 head and on the all-INT8 head. A
kernel maps to a node by onnxruntime's naming: the node's own name, with `_token_<n>` (a node rewritten, e.g.
Conv -> QLinearConv) or `_nchwc` (the float layout transformer, named after the output tensor) removed; a
QuantizeLinear/DequantizeLinear kernel maps to the tensor it converts. A unit with no kernel of its own on
one side (onnxruntime fused it into its producer there) goes with its producer. Layout kernels onnxruntime
inserts (Transpose, ReorderInput/Output) map to nothing and are left out of the choice.

The choice is a minimum cut (exact for two labels with a cost on each edge whose ends differ): a unit pays its
float or its INT8 time, and every tensor between a float and an INT8 unit pays one conversion (a
QuantizeLinear or DequantizeLinear kernel: measured where the all-INT8 head has one, else estimated from the
measured ones by size). The head's input is float; its output is the INT8 wire. So a region is kept float
only when what it saves pays for its boundaries: no single node flips back and forth.
"""

from __future__ import annotations

import re
import statistics
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import onnx

from edgesplit.export.node_profile import NodeProfile

FUSED = {"Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "LeakyRelu", "Mul"}  # join their producer
SHAPE_ONLY = {"Shape", "Size"}  # read a tensor's shape, never its values: no conversion needed
QDQ = {"QuantizeLinear", "DequantizeLinear"}
_SUFFIX = re.compile(r"(_token_\d+|_nchwc|_QuantizeLinear|_DequantizeLinear)$")
# A conversion kernel where the all-INT8 head has none to measure: about 2 us a call plus 1 ns a value on the
# CPUs measured (benchmarks/RESULTS.md); replaced by this head's own Q/DQ kernels wherever it has some.
DEFAULT_CALL_MS, DEFAULT_VALUE_MS = 0.002, 1e-6
MIN_FIT = 3  # Q/DQ kernels needed to fit this head's own conversion cost
INPUT, OUTPUT = "<input>", "<wire>"


def name_nodes(path) -> None:
    """Give every unnamed node of the ONNX file at `path` a unique name (`nodes_to_exclude` goes by name)."""
    model = onnx.load(str(path))
    taken = {n.name for n in model.graph.node}
    changed = False
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name, changed = name, True
            taken.add(name)
    if changed:
        onnx.save(model, str(path))


@dataclass
class Unit:
    head: str  # the node the unit is named after
    op: str
    nodes: list[str]
    quantizable: bool = False  # the all-INT8 head quantizes a node of it
    float_ms: float = 0.0
    int8_ms: float = 0.0
    float_seen: bool = False
    int8_seen: bool = False

    def record(self) -> dict:
        return {"node": self.head, "op": self.op, "float_ms": round(self.float_ms, 4),
                "int8_ms": round(self.int8_ms, 4), **({"with": self.nodes[1:]} if len(self.nodes) > 1 else {})}


@dataclass
class Regions:
    """The units of a float graph with their measured costs, and the tensors between them."""

    units: dict[str, Unit]
    unit_of: dict[str, str]  # node -> unit head
    edges: dict[str, tuple[str, list[str]]]  # tensor -> (producer unit or INPUT, consumer units or OUTPUT)
    numel: dict[str, int]
    measured: dict[str, float] = field(default_factory=dict)  # tensor -> its conversion kernel's ms (all-INT8)
    call_ms: float = DEFAULT_CALL_MS
    value_ms: float = DEFAULT_VALUE_MS

    def conversion_ms(self, tensor: str) -> float:
        if tensor in self.measured:
            return self.measured[tensor]
        return self.call_ms + self.value_ms * self.numel.get(tensor, 0)

    def cost(self, float_units: set[str]) -> float:
        """Predicted ms of the head with `float_units` float and every other quantizable unit INT8."""
        label = {h: (u.quantizable and h not in float_units) for h, u in self.units.items()}
        label[INPUT], label[OUTPUT] = False, True
        total = sum(u.int8_ms if label[h] else u.float_ms for h, u in self.units.items())
        for tensor, (producer, consumers) in self.edges.items():
            if any(label[c] != label[producer] for c in consumers):
                total += self.conversion_ms(tensor)
        return total


def build_regions(float_model: onnx.ModelProto, quantized: onnx.ModelProto) -> Regions:
    """The units of `float_model` (the graph `quantize_static` read) and the tensors between them; a unit is
    quantizable where the all-INT8 graph `quantized` feeds one of its nodes through a DequantizeLinear."""
    graph = float_model.graph
    constant = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant"
                                                       for o in n.output}
    producer = {o: n.name for n in graph.node for o in n.output}
    units: dict[str, Unit] = {}
    unit_of: dict[str, str] = {}
    for node in graph.node:
        sources = {unit_of.get(producer.get(t)) for t in node.input if t and t not in constant}
        if node.op_type in FUSED and len(sources) == 1 and None not in sources:
            head = sources.pop()
            units[head].nodes.append(node.name)
        else:
            head = node.name
            units[head] = Unit(head, node.op_type, [node.name])
        unit_of[node.name] = head
    dequantized = {o for n in quantized.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    weights = {i.name for i in quantized.graph.initializer}
    for node in quantized.graph.node:
        if node.name in unit_of and any(t in dequantized and not _from_weights(t, quantized, weights)
                                        for t in node.input):
            units[unit_of[node.name]].quantizable = True
    edges: dict[str, tuple[str, list[str]]] = {}
    outputs = {o.name for o in graph.output}
    inferred = onnx.shape_inference.infer_shapes(float_model)  # types and sizes of every tensor
    for tensor in [i.name for i in graph.input] + [o for n in graph.node for o in n.output]:
        if tensor in constant or not _is_float(tensor, inferred):
            continue
        source = unit_of[producer[tensor]] if tensor in producer else INPUT
        readers = [unit_of[n.name] for n in graph.node if tensor in n.input and n.op_type not in SHAPE_ONLY]
        readers += [OUTPUT] if tensor in outputs else []
        crossing = sorted({r for r in readers if r != source})
        if crossing:
            edges[tensor] = (source, crossing)
    return Regions(units, unit_of, edges, _numels(inferred))


def _from_weights(tensor: str, model: onnx.ModelProto, weights: set[str]) -> bool:
    """A DequantizeLinear output computed from an initializer (a quantized weight, not an activation)."""
    node = next((n for n in model.graph.node if tensor in n.output), None)
    return node is not None and node.input[0] in weights


def _is_float(tensor: str, model: onnx.ModelProto) -> bool:
    for vi in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        if vi.name == tensor:
            return vi.type.tensor_type.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    return True  # no type recorded: assume an activation


def _numels(model: onnx.ModelProto) -> dict[str, int]:
    """Values per tensor at batch 1, from the shapes shape inference recorded (symbolic dims count 1)."""
    out = {}
    for vi in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        out[vi.name] = int(np.prod([d.dim_value if d.dim_value > 0 else 1 for d in dims])) if dims else 1
    return out


def attribute(regions: Regions, float_profile: NodeProfile, int8_profile: NodeProfile,
              float_model: onnx.ModelProto) -> None:
    """Add the measured kernel times to the units (float and INT8 sides) and the measured conversions."""
    producer = {o: n.name for n in float_model.graph.node for o in n.output}
    for profile, side in ((float_profile, "float"), (int8_profile, "int8")):
        boundary = []
        for kernel in profile.kernels.values():
            if kernel.op in QDQ:  # the INT8 head's conversions (the float head's only one is its wire)
                tensor = _strip(kernel.name)
                if side == "int8" and (tensor in regions.edges or tensor in producer):
                    _conversion(regions, tensor, kernel.ms, kernel.op, producer)
                    boundary.append(kernel)
                continue
            node = _node_of(kernel.name, regions.unit_of, producer)
            if node is None:
                continue  # a layout kernel onnxruntime inserted
            unit = regions.units[regions.unit_of[node]]
            setattr(unit, f"{side}_ms", getattr(unit, f"{side}_ms") + kernel.ms)
            setattr(unit, f"{side}_seen", True)
        sized = [k for k in boundary if k.numel > 0]
        if side == "int8" and len(sized) >= MIN_FIT:  # fewer: too few to fit, the typical costs stand
            regions.call_ms = min(k.ms for k in sized)
            regions.value_ms = statistics.median((k.ms - regions.call_ms) / k.numel for k in sized)
    _merge_unseen(regions, float_model)


def _strip(name: str) -> str:
    while (stripped := _SUFFIX.sub("", name)) != name:
        name = stripped
    return name


def _node_of(kernel: str, unit_of: dict[str, str], producer: dict[str, str]) -> str | None:
    name = kernel
    while True:
        if name in unit_of:
            return name
        if name in producer:  # onnxruntime named the kernel after the tensor it writes
            return producer[name]
        stripped = _SUFFIX.sub("", name)
        if stripped == name:
            return None
        name = stripped


def _conversion(regions: Regions, tensor: str, ms: float, op: str, producer: dict[str, str]) -> None:
    """A Q/DQ kernel of the all-INT8 head (or the FP32 head's wire): inside a unit it is the unit's INT8 cost;
    between two quantizable units it is the cost of the one running float inside (DQ: the reader, Q: the
    writer); at a fixed-float unit, the input or the wire it is that boundary's measured conversion."""
    source, readers = regions.edges.get(tensor, (regions.unit_of.get(producer.get(tensor, "")), []))
    ends = [source, *readers]
    if all(e in regions.units and regions.units[e].quantizable for e in ends):
        targets = readers if op == "DequantizeLinear" and readers else [source]
        for t in targets:
            regions.units[t].int8_ms += ms / len(targets)
    elif tensor in regions.edges:
        regions.measured[tensor] = regions.measured.get(tensor, 0.0) + ms


def _merge_unseen(regions: Regions, float_model: onnx.ModelProto) -> None:
    """A quantizable unit with no kernel of its own on one side was fused into the unit feeding it there: it
    joins that unit (its times added), so the two are labelled together."""
    for node in float_model.graph.node:
        head = regions.unit_of[node.name]
        unit = regions.units.get(head)
        if unit is None or head != node.name or (unit.float_seen and unit.int8_seen) or not unit.quantizable:
            continue
        feeders = [regions.edges[t][0] for t in node.input if t in regions.edges]
        target = next((f for f in feeders if f in regions.units and regions.units[f].quantizable), None)
        if target is None:
            continue
        into = regions.units[target]
        into.nodes += unit.nodes
        into.float_ms += unit.float_ms
        into.int8_ms += unit.int8_ms
        for name in unit.nodes:
            regions.unit_of[name] = target
        del regions.units[head]
        for tensor, (source, readers) in list(regions.edges.items()):
            source = target if source == head else source
            readers = sorted({target if r == head else r for r in readers} - {source})
            if readers:
                regions.edges[tensor] = (source, readers)
            else:
                del regions.edges[tensor]


def float_regions(regions: Regions, float_units: set[str]) -> list[list[str]]:
    """The connected runs of `float_units` (units joined by a tensor), each in graph order."""
    neighbours: dict[str, set[str]] = {h: set() for h in float_units}
    for producer, readers in regions.edges.values():
        for reader in readers:
            if producer in float_units and reader in float_units:
                neighbours[producer].add(reader)
                neighbours[reader].add(producer)
    order = list(regions.units)
    seen: set[str] = set()
    runs = []
    for head in sorted(float_units, key=order.index):
        if head in seen:
            continue
        stack, run = [head], set()
        while stack:
            h = stack.pop()
            if h not in run:
                run.add(h)
                stack.extend(neighbours[h] - run)
        seen |= run
        runs.append(sorted(run, key=order.index))
    return runs


def choose_float_units(regions: Regions) -> set[str]:
    """The quantizable units whose float form, boundaries included, makes the head fastest (a minimum s-t cut:
    the source side runs INT8, the sink side float)."""
    source, sink = "<int8>", "<float>"
    capacity: dict[str, dict[str, float]] = {}

    def add(a: str, b: str, c: float) -> None:
        capacity.setdefault(a, {}).setdefault(b, 0.0)
        capacity.setdefault(b, {}).setdefault(a, 0.0)
        capacity[a][b] += c

    forced = float("inf")
    for head, unit in regions.units.items():
        if unit.quantizable:
            add(source, head, unit.float_ms)
            add(head, sink, unit.int8_ms)
        else:
            add(head, sink, forced)
    add(INPUT, sink, forced)
    add(source, OUTPUT, forced)
    for tensor, (producer, readers) in regions.edges.items():
        for reader in readers:
            add(producer, reader, regions.conversion_ms(tensor))
            add(reader, producer, regions.conversion_ms(tensor))
    int8_side = _source_side(capacity, source, sink)
    return {h for h, u in regions.units.items() if u.quantizable and h not in int8_side}


def _source_side(capacity: dict[str, dict[str, float]], source: str, sink: str) -> set[str]:
    """Edmonds-Karp maximum flow; the nodes still reachable from the source afterwards."""
    flow = {a: dict.fromkeys(edges, 0.0) for a, edges in capacity.items()}
    while True:
        parent = {source: source}
        queue = deque([source])
        while queue and sink not in parent:
            a = queue.popleft()
            for b, c in capacity[a].items():
                if b not in parent and c - flow[a][b] > 1e-12:
                    parent[b] = a
                    queue.append(b)
        if sink not in parent:
            return set(parent)
        path, b = [], sink
        while b != source:
            path.append((parent[b], b))
            b = parent[b]
        push = min(capacity[a][b] - flow[a][b] for a, b in path)
        for a, b in path:
            flow[a][b] += push
            flow[b][a] -= push
