"""`split(model, cut) -> Split(head, tail)`: two ordinary modules with `tail(head(x)) == model(x)`.

Both halves are `torch.fx.GraphModule`s built from one trace of the model. They share the model's
submodules (no copy), so fine-tuning the halves fine-tunes the model; deep-copy the model first
for independent halves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn

from edgesplit.errors import ModelError
from edgesplit.models.cuts import CutAnalysis, CutPoint, analyse


@dataclass(frozen=True)
class Split:
    """A model cut in two: `head` runs on the device and emits one tensor, `tail` finishes on the server."""

    head: nn.Module
    tail: nn.Module
    cut: CutPoint
    input_shape: tuple[int, ...]  # per-sample input shape the cut was analysed for


def split(model: nn.Module, cut: str | CutPoint, example_input: torch.Tensor | None = None,
          analysis: CutAnalysis | None = None) -> Split:
    """Cut `model` at `cut` (a block name such as 'layer2.1', a layer name, or a `CutPoint`).

    `example_input` defaults to a zero batch shaped for the model's recorded spec.
    """
    if analysis is None:
        analysis = analyse(model, example_input if example_input is not None else default_input(model))
    point = analysis.resolve(cut.name if isinstance(cut, CutPoint) else cut)
    gm = analysis.traced.gm
    nodes = list(gm.graph.nodes)
    crossing = nodes[point.index]

    head_graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for n in nodes[: point.index + 1]:
        env[n] = head_graph.node_copy(n, lambda a: env[a])
    head_graph.output(env[crossing])

    tail_graph = fx.Graph()
    env = {crossing: tail_graph.placeholder(point.node)}
    for n in nodes[: point.index + 1]:
        if n.op == "get_attr":  # parameters used functionally belong to both halves
            env[n] = tail_graph.node_copy(n, lambda a: env[a])
    for n in nodes[point.index + 1:]:
        env[n] = tail_graph.node_copy(n, lambda a: env[a])
    for n in list(tail_graph.nodes):  # drop parameters only the head uses; keep all compute as traced
        if n.op == "get_attr" and not n.users:
            tail_graph.erase_node(n)

    head = fx.GraphModule(gm, head_graph, class_name="Head")
    tail = fx.GraphModule(gm, tail_graph, class_name="Tail")
    head.train(model.training)
    tail.train(model.training)
    return Split(head, tail, point, analysis.traced.example_shape)


def default_input(model: nn.Module, batch: int = 1) -> torch.Tensor:
    """A zero batch shaped for `model.edgesplit_spec` (set by `create_model`)."""
    spec = getattr(model, "edgesplit_spec", None)
    if spec is None:
        raise ModelError("model has no recorded input shape: pass example_input, e.g. torch.zeros(1, 3, 32, 32)")
    return torch.zeros(batch, spec.in_chans, spec.img_size, spec.img_size)
