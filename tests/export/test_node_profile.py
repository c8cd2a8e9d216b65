"""onnxruntime's node-profiling trace, parsed: per-kernel medians over the calls after the warm-up.

data/ort_profile_trace.json was recorded with onnxruntime 1.32 (Conv -> Relu -> Conv, 1x1x8x8, four calls;
onnxruntime fused the Relu into conv1; args trimmed to op_name, provider and output_type_shape): the first
call pays session warm-up (conv1 1115 us), the next three 18/7/4 us and 9/10/6 us.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from edgesplit.export.node_profile import NodeProfile, parse_trace, profile_kernels

TRACE = json.loads((Path(__file__).parent / "data" / "ort_profile_trace.json").read_text())


def test_the_warm_up_call_is_left_out_and_medians_are_per_kernel():
    profile = parse_trace(TRACE, skip_runs=1)
    assert list(profile.kernels) == ["conv1", "conv2"]  # in the order they ran, `_kernel_time` dropped
    conv1, conv2 = profile.kernels["conv1"], profile.kernels["conv2"]
    assert (conv1.op, conv2.op) == ("FusedConv", "Conv"), "the relu fused into conv1: onnxruntime's op names"
    assert conv1.ms == pytest.approx(0.007) and conv2.ms == pytest.approx(0.009)  # microseconds -> ms
    assert (conv1.numel, conv2.numel) == (8 * 8 * 8, 4 * 8 * 8)  # from output_type_shape
    assert profile.runs == 3 and profile.run_ms == pytest.approx(0.024)


def test_without_skipping_the_first_call_counts():
    profile = parse_trace(TRACE)
    assert profile.runs == 4 and profile.kernels["conv1"].ms == pytest.approx((18 + 7) / 2 / 1000)


def test_a_trace_of_warm_up_calls_only_is_refused():
    with pytest.raises(ValueError, match="4 calls, none after the 4 warm-up calls"):
        parse_trace(TRACE, skip_runs=4)


def test_a_live_profile_names_every_kernel_of_the_optimized_graph(tmp_path):
    """The same graph profiled here: the parser reads what this onnxruntime writes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c"], ["features"], name="squash")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 8, 8])],
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "g.onnx")
    profile = profile_kernels(tmp_path / "g.onnx", {"input": np.ones((1, 2, 8, 8), np.float32)}, runs=5, warmup=2,
                              threads=1)
    assert profile.runs == 5 and profile.kernels and all(k.ms >= 0 for k in profile.kernels.values())
    assert sum(k.ms for k in profile.kernels.values()) <= profile.run_ms + 1e-9
    sent = json.loads(json.dumps(profile.to_dict()))  # as the device runner sends it back over ssh
    assert NodeProfile.from_dict(sent) == profile and list(NodeProfile.from_dict(sent).kernels) == list(profile.kernels)
