"""Choosing what stays float: regions, not single nodes, because every INT8/float boundary costs a conversion.

The costs here are written down (no timing), so each case is exact: a chain input -> a -> b -> c -> d -> wire
whose units take the given float / INT8 times, every boundary tensor costing `boundary` ms.
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesplit.export.int8_regions import (
    INPUT,
    OUTPUT,
    Regions,
    Unit,
    build_regions,
    choose_float_units,
    float_regions,
    name_nodes,
)


def chain(times: dict[str, tuple[float, float]], boundary: float) -> Regions:
    names = list(times)
    units = {n: Unit(n, "Conv", [n], True, f, i) for n, (f, i) in times.items()}
    edges = {"input": (INPUT, [names[0]])}
    edges.update({f"t_{a}": (a, [b]) for a, b in zip(names, names[1:], strict=False)})
    edges[f"t_{names[-1]}"] = (names[-1], [OUTPUT])
    return Regions(units, {n: n for n in names}, edges, {}, {t: boundary for t in edges})


def test_a_slow_run_of_nodes_stays_float_as_one_region():
    regions = chain({"a": (1.0, 0.3), "b": (0.1, 0.4), "c": (0.1, 0.4), "d": (1.0, 0.3)}, boundary=0.05)
    float_units = choose_float_units(regions)
    assert float_units == {"b", "c"}
    assert float_regions(regions, float_units) == [["b", "c"]]
    assert regions.cost(float_units) == pytest.approx(0.3 + 0.1 + 0.1 + 0.3 + 3 * 0.05)  # input, a|b, c|d
    assert regions.cost(float_units) < min(regions.cost(set()), regions.cost({"a", "b", "c", "d"}))


def test_a_node_that_saves_less_than_its_two_boundaries_stays_int8():
    regions = chain({"a": (1.0, 0.3), "b": (0.10, 0.13), "c": (1.0, 0.3)}, boundary=0.05)
    assert choose_float_units(regions) == set()  # 0.03 ms saved < 0.10 ms of Q + DQ around it


def test_small_alternating_losses_do_not_flip_node_by_node():
    times = {"a": (1.0, 0.3), "b": (0.1, 0.14), "c": (0.14, 0.1), "d": (0.1, 0.14), "e": (0.14, 0.1),
             "f": (1.0, 0.3)}
    assert choose_float_units(chain(times, boundary=0.05)) == set()


def test_everything_float_when_int8_loses_everywhere_and_the_wire_is_still_paid():
    regions = chain({"a": (0.1, 0.3), "b": (0.1, 0.3)}, boundary=0.05)
    assert choose_float_units(regions) == {"a", "b"}
    assert regions.cost({"a", "b"}) == pytest.approx(0.2 + 0.05)  # the int8 wire's QuantizeLinear


def test_units_follow_onnxruntime_fusions_and_the_quantized_graph(tmp_path):
    """Conv + Relu and Conv + HardSigmoid + Mul (hard-swish) are one unit each; a unit is quantizable when the
    QDQ graph feeds a node of it through a DequantizeLinear of an activation."""
    rng = np.random.default_rng(0)
    w = [numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32), f"w{i}") for i in range(2)]
    nodes = [helper.make_node("Conv", ["input", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c0"], ["r0"]),
             helper.make_node("Conv", ["r0", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("HardSigmoid", ["c1"], ["h1"]),
             helper.make_node("Mul", ["c1", "h1"], ["features"])]
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [vi("input", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [vi("features", TensorProto.FLOAT, [1, 4, 8, 8])], w)
    path = tmp_path / "float.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    name_nodes(path)
    float_model = onnx.load(path)
    assert all(n.name for n in float_model.graph.node) and len({n.name for n in float_model.graph.node}) == 5
    quantized = _qdq_around(float_model, quantize={"conv0"})
    regions = build_regions(float_model, quantized)
    assert [u.nodes for u in regions.units.values()] == [["conv0", "Relu_1"], ["conv1", "HardSigmoid_3", "Mul_4"]]
    assert [u.quantizable for u in regions.units.values()] == [True, False]
    assert regions.edges["input"] == (INPUT, ["conv0"]) and regions.edges["r0"] == ("conv0", ["conv1"])
    assert regions.edges["features"] == ("conv1", [OUTPUT])
    assert regions.numel["r0"] == 4 * 8 * 8


def _qdq_around(model: onnx.ModelProto, quantize: set[str]) -> onnx.ModelProto:
    """The float graph with a Q/DQ pair on the activation inputs of the nodes named in `quantize`."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    for node in list(graph.node):
        if node.name in quantize:
            tensor = node.input[0]
            graph.node.extend([helper.make_node("QuantizeLinear", [tensor, "s", "z"], [f"{tensor}_q"]),
                               helper.make_node("DequantizeLinear", [f"{tensor}_q", "s", "z"], [f"{tensor}_dq"])])
            node.input[0] = f"{tensor}_dq"
    graph.initializer.extend([numpy_helper.from_array(np.array(0.1, np.float32), "s"),
                              numpy_helper.from_array(np.array(0, np.uint8), "z")])
    return out
