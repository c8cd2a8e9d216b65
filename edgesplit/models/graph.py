"""One torch.fx trace of a model, annotated per node: output shape, MACs, and where a cut is legal.

A cut after node i is legal when exactly one tensor computed at or before i is still needed
after i: that tensor is what the head sends. Parameters (get_attr nodes) go to both halves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.utils.flop_counter import FlopCounterMode

from edgesplit.errors import ModelError


@dataclass(frozen=True)
class NodeInfo:
    """Facts about one graph node, in execution order."""

    index: int
    node: fx.Node
    module_path: str | None  # the leaf module called, for call_module nodes
    owners: tuple[str, ...]  # every module (outermost first) whose forward produced this node
    shape: tuple[int, ...] | None  # per-sample output shape (batch dimension dropped), tensors only
    dtype: torch.dtype | None
    macs: int  # multiply-accumulates per sample
    crossing: tuple[str, ...]  # names of the nodes still needed after this one (the tensors a cut here sends)


class _Profiler(fx.Interpreter):
    """Runs the graph once, recording each node's output shape and FLOPs."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.records: dict[str, tuple[tuple[int, ...] | None, torch.dtype | None, int]] = {}

    def run_node(self, n: fx.Node):
        with FlopCounterMode(display=False) as counter:
            out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            shape, dtype = tuple(out.shape), out.dtype
        else:
            shape, dtype = None, None
        self.records[n.name] = (shape, dtype, counter.get_total_flops())
        return out


@dataclass
class TracedModel:
    """A model's fx graph plus per-node `NodeInfo` computed on an example input."""

    model: nn.Module
    gm: fx.GraphModule
    nodes: list[NodeInfo]
    example_shape: tuple[int, ...]

    def by_name(self, name: str) -> NodeInfo:
        for info in self.nodes:
            if info.node.name == name:
                return info
        raise KeyError(name)


def trace(model: nn.Module, example_input: torch.Tensor) -> TracedModel:
    """Symbolically trace `model` and profile every node on `example_input` (batch of 1 or more)."""
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 2:
        raise ModelError("example_input must be a batched tensor, e.g. torch.zeros(1, 3, 32, 32)")
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types (TraceError, TypeError, AttributeError...)
        raise ModelError(
            f"cannot trace {type(model).__name__} with torch.fx ({type(exc).__name__}: {_first_line(exc)}); "
            f"move data-dependent control flow into a submodule, or list its blocks in `model.cut_blocks`"
        ) from None
    batch = example_input.shape[0]
    was_training = model.training
    model.eval()
    try:
        profiler = _Profiler(gm)
        with torch.no_grad():
            profiler.run(example_input)
    except Exception as exc:
        raise ModelError(
            f"{type(model).__name__} failed on an input of shape {tuple(example_input.shape)} "
            f"({type(exc).__name__}: {_first_line(exc)}); check --input (channels x height x width)"
        ) from None
    finally:
        model.train(was_training)
    nodes = [n for n in gm.graph.nodes]
    position = {n: i for i, n in enumerate(nodes)}
    last_use = {n: max((position[u] for u in n.users), default=-1) for n in nodes}
    infos: list[NodeInfo] = []
    live: set[fx.Node] = set()
    for i, n in enumerate(nodes):
        if n.op != "get_attr":
            live.add(n)
        live = {m for m in live if last_use[m] > i}
        shape, dtype, flops = profiler.records.get(n.name, (None, None, 0))
        if shape is not None and len(shape) >= 1 and shape[0] == batch:
            shape = shape[1:]
        infos.append(NodeInfo(
            index=i,
            node=n,
            module_path=str(n.target) if n.op == "call_module" else None,
            owners=_owners(n),
            shape=shape,
            dtype=dtype,
            macs=int(flops // 2 // batch),
            crossing=tuple(m.name for m in sorted(live, key=position.__getitem__)),
        ))
    return TracedModel(model, gm, infos, tuple(example_input.shape[1:]))


def _owners(n: fx.Node) -> tuple[str, ...]:
    stack = n.meta.get("nn_module_stack") or {}
    paths = []
    for value in stack.values():
        path = value[0] if isinstance(value, tuple) else str(value)
        if path and path not in paths:
            paths.append(path)
    if n.op == "call_module" and str(n.target) not in paths:
        paths.append(str(n.target))
    return tuple(paths)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
