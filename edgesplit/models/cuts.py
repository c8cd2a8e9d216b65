"""Cut points: every place where exactly one tensor crosses from head to tail, with its costs.

`cut_points(model, x, granularity="block")` lists the architecture's natural block boundaries;
`granularity="layer"` lists every graph node where a single tensor crosses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgesplit.errors import CutError, ModelError, closest
from edgesplit.models.blocks import block_paths
from edgesplit.models.cutpoint import GRANULARITIES, CutPoint
from edgesplit.models.graph import NodeInfo, TracedModel, trace
from edgesplit.vocab import BYTES_PER_VALUE


@dataclass
class CutAnalysis:
    """All cut candidates of one traced model; resolves names to legal cuts or explains why not."""

    traced: TracedModel
    blocks: list[CutPoint]
    layers: list[CutPoint]
    total_params: int
    total_macs: int

    def all(self, granularity: str) -> list[CutPoint]:
        if granularity not in GRANULARITIES:
            raise ModelError(f"unknown granularity {granularity!r}: use one of {', '.join(GRANULARITIES)}")
        return self.blocks if granularity == "block" else self.layers

    def resolve(self, name: str) -> CutPoint:
        for cut in self.blocks + self.layers:
            if cut.name == name:
                return cut
        aliases = self._aliases()
        if name in aliases:
            return aliases[name]
        index = self._position_of(name)
        if index is None:
            known = [c.name for c in self.blocks] + [c.name for c in self.layers]
            raise CutError(f"unknown cut {name!r} ({closest(name, known)}); "
                           f"'edgesplit cuts MODEL --granularity layer' lists them all")
        legal = {c.index: c for c in self.layers}
        if index in legal:  # a container module (e.g. `layer2.1.conv1`'s parent) whose output alone crosses
            return legal[index]
        info = self.traced.nodes[index]
        before = [c.name for c in self.blocks if c.index < index][-1:]
        after = [c.name for c in self.blocks if c.index > index][:1]
        near = ", ".join(before + after) or ", ".join(c.name for c in self.layers[:3])
        raise CutError(
            f"cut {name!r} would send {len(info.crossing)} tensors ({', '.join(info.crossing)}), "
            f"e.g. inside a residual block; nearest valid cuts: {near}"
        )

    def _aliases(self) -> dict[str, CutPoint]:
        # A legal position may also be named by its fx node or by the leaf module called there.
        by_index = {c.index: c for c in self.layers}
        out: dict[str, CutPoint] = {}
        for info in self.traced.nodes:
            cut = by_index.get(info.index)
            if cut is not None:
                out.setdefault(info.node.name, cut)
                if info.module_path:
                    out.setdefault(info.module_path, cut)
        return out

    def _position_of(self, name: str) -> int | None:
        last = None
        for info in self.traced.nodes:
            if name in (info.node.name, info.module_path) or name in info.owners:
                last = info.index
        return last


def analyse(model: nn.Module, example_input: torch.Tensor) -> CutAnalysis:
    """Trace `model` on `example_input` and list its block and layer cut points."""
    traced = trace(model, example_input)
    nodes = traced.nodes
    cum_macs, cum_params = _cumulative_costs(traced)
    output_index = len(nodes) - 1
    last_compute = _last_compute(nodes)

    def legal(info: NodeInfo) -> bool:
        return (info.node.op not in ("placeholder", "output", "get_attr") and len(info.crossing) == 1
                and info.crossing[0] == info.node.name and info.shape is not None
                and info.index < last_compute)

    def make(info: NodeInfo, name: str, is_block: bool) -> CutPoint:
        numel = 1
        for d in info.shape:
            numel *= d
        return CutPoint(name=name, index=info.index, node=info.node.name, shape=info.shape,
                        params=cum_params[info.index], macs=cum_macs[info.index],
                        payload_bytes={k: numel * b for k, b in BYTES_PER_VALUE.items()}, is_block=is_block)

    block_names: dict[int, str] = {}
    for path in block_paths(model):
        ends = [info.index for info in nodes if path in info.owners]
        if ends and max(ends) < output_index and max(ends) not in block_names:
            block_names[max(ends)] = path
    blocks = [make(nodes[i], name, True) for i, name in sorted(block_names.items()) if legal(nodes[i])]
    layers = []
    for info in nodes:
        if legal(info):
            name = block_names.get(info.index) or _layer_name(info, nodes)
            layers.append(make(info, name, info.index in block_names))
    return CutAnalysis(traced, blocks, layers,
                       total_params=sum(p.numel() for p in model.parameters()),
                       total_macs=cum_macs[output_index])


def cut_points(model: nn.Module, example_input: torch.Tensor, granularity: str = "block") -> list[CutPoint]:
    """The legal cuts of `model` for inputs shaped like `example_input`, in execution order."""
    return analyse(model, example_input).all(granularity)


def _last_compute(nodes: list[NodeInfo]) -> int:
    # The node feeding the output: cutting after it leaves an empty tail.
    return max(i.index for i in nodes if i.node.op not in ("output",))


def _layer_name(info: NodeInfo, nodes: list[NodeInfo]) -> str:
    if info.module_path and sum(1 for n in nodes if n.module_path == info.module_path) == 1:
        return info.module_path
    return info.node.name


def _cumulative_costs(traced: TracedModel) -> tuple[list[int], list[int]]:
    macs, params, seen = [], [], set()
    total_macs = total_params = 0
    for info in traced.nodes:
        total_macs += info.macs
        n = info.node
        tensors = []
        if n.op == "call_module":
            tensors = list(traced.gm.get_submodule(str(n.target)).parameters())
        elif n.op == "get_attr":
            obj = _get_attr(traced.gm, str(n.target))
            tensors = [obj] if isinstance(obj, nn.Parameter) else []
        for p in tensors:
            if id(p) not in seen:
                seen.add(id(p))
                total_params += p.numel()
        macs.append(total_macs)
        params.append(total_params)
    return macs, params


def _get_attr(root: nn.Module, target: str):
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj
