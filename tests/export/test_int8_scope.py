"""`int8_scope = "auto"`: a head with a region that is slower in INT8 keeps that region float on this host.

The head is made for it (an ONNX file, the way a user would ship one): a stem and four depthwise-separable
blocks with hard-swish (onnxruntime pays Q/DQ around every hard-swish and has no fast INT8 depthwise kernel),
then three dense 3x3 convolutions with ReLU (where INT8 pays on a VNNI host). Measured on the 2-core AVX-512 VNNI
host these tests were written on: the all-INT8 head runs at ~0.8x the FP32 head's speed, the head `auto` ships at
~1.3x. On the CI runner the mixed head was slower than FP32 too, and `auto` rightly shipped the FP32 head: what
pays in INT8 is the host's to say. So the decision itself is tested on a scripted host (`_ScriptedHost`: the
speeds set by the test, the quantization, exclusion and fidelity real), and what holds on every host seen is
tested on the one running the suite.
"""

import statistics
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgesplit.errors import ExportError
from edgesplit.export import ExportConfig, export_bundle
from edgesplit.export.int8_scope import MARGIN, check_measurable
from edgesplit.export.int8_targets import detect_target


def _mixed_model():
    import torch
    from torch import nn

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.Conv2d(3, 32, 3, 1, 1), nn.Hardswish()]
            for _ in range(4):
                layers += [nn.Conv2d(32, 32, 3, 1, 1, groups=32), nn.Hardswish(), nn.Conv2d(32, 32, 1), nn.Hardswish()]
            self.separable = nn.Sequential(*layers)
            self.dense = nn.Sequential(nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(),
                                       nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU())
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            return self.fc(self.dense(self.separable(x)).mean((2, 3)))

    torch.manual_seed(0)
    return Mixed().eval(), torch.zeros(1, 3, 32, 32)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """{scope or 'fp32': bundle} of the mixed head cut after its dense convolutions."""
    import contextlib
    import io

    import torch

    model, example = _mixed_model()
    path = tmp_path_factory.mktemp("mixed") / "mixed.onnx"
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), input_names=["image"], output_names=["logits"],
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, dynamo=True, external_data=False)
    cut = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Relu"][-1].output[0]
    out = {}
    for name, precision, scope in (("fp32", "fp32", "auto"), ("auto", "int8", "auto"), ("all", "int8", "all")):
        config = ExportConfig(str(path), cut, precision, input_shape=(3, 32, 32), int8_scope=scope, calib_size=64,
                              eval_size=64)
        out[name] = export_bundle(config, path.parent / name)
    return out


def _convs(bundle) -> dict[str, int]:
    """{Conv node name: group} of a bundle's head."""
    graph = onnx.load(str(bundle.onnx_path)).graph
    return {n.name: next((a.i for a in n.attribute if a.name == "group"), 1) for n in graph.node if n.op_type == "Conv"}


class _ScriptedHost:
    """A host whose speeds the test sets, so that the decision is checked whatever CPU runs the suite: the depthwise
    convolutions are 4x slower in INT8 (as onnxruntime's are on x86: no INT8 depthwise kernel worth it), the dense
    ones 4x faster, a conversion (Q or DQ) 7.3 us. Profiles name a kernel after its node, as
    onnxruntime does with the optimizer off; each timing pass reads the heads at `head_ms` (by candidate)."""

    where = "the scripted host"
    head_ms = {"all": 0.50, "auto": 0.30, "none": 0.40}

    def __init__(self, depthwise: set[str]):
        self.depthwise, self.names = depthwise, []

    @property
    def target(self):
        return detect_target()

    def measured_on(self):
        return {"cpu": "scripted", "target": self.target, "flags": [], "threads": 1}

    def profile(self, graph, feed):
        from edgesplit.export.node_profile import KernelTime, NodeProfile

        kernels = {}
        for node in onnx.load(str(graph)).graph.node:
            ms = 0.02 if node.op_type in ("Conv", "Gemm") else 0.005
            if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                ms, numel = 0.0073, 32 * 32 * 32  # every tensor here is 32x32x32 at most
            else:
                numel = 0
            kernels[node.name] = KernelTime(node.name, node.op_type, ms, numel)
        if any(k.op == "DequantizeLinear" for k in kernels.values()):  # the INT8 head
            for name, k in kernels.items():
                if k.op == "Conv":
                    kernels[name] = KernelTime(name, k.op, k.ms * (4 if name in self.depthwise else 0.25), 0)
        return NodeProfile(kernels, sum(k.ms for k in kernels.values()), 10)

    def open(self, heads, feed):
        self.names = [Path(h).name.split(".")[0] for h in heads]

    def time_pass(self):
        return [[self.head_ms[name.split("-")[0]]] * 100 for name in self.names]  # auto-2 reads as auto

    def close(self):
        self.names = []


@pytest.fixture(scope="module")
def scripted(mixed):
    """The mixed head's `auto` export measured on `_ScriptedHost`."""
    depthwise = {name for name, group in _convs(mixed["fp32"]).items() if group > 1}
    config = ExportConfig(str(mixed["fp32"].path.parent / "mixed.onnx"), mixed["fp32"].manifest["cut"]["name"],
                          "int8", input_shape=(3, 32, 32), int8_scope="auto", calib_size=64, eval_size=64)
    return export_bundle(config, mixed["fp32"].path.parent / "scripted", measurer=_ScriptedHost(depthwise))


def test_auto_keeps_the_slow_depthwise_region_float_and_quantizes_the_dense_one(mixed, scripted):
    """The decision, on a host where INT8 depthwise convolutions are slow and dense ones fast (scripted)."""
    scope = scripted.manifest["quantization"]["scope"]
    assert scope["asked"] == "auto" and scope["chosen"] == "partial" and scope["candidate"] == "auto"
    convs = _convs(mixed["fp32"])
    depthwise = {name for name, group in convs.items() if group > 1}
    dense = list(convs)[-3:]
    float_nodes = {n["node"] for n in scope["float_nodes"]} | {w for n in scope["float_nodes"] for w in n.get("with", [])}
    assert len(depthwise) == 4 and depthwise <= float_nodes, "every depthwise convolution stays float"
    assert set(dense) <= set(scope["quantized_nodes"]) and not set(dense) & float_nodes
    assert len(scope["float_regions"]) == 1, "one region, not single nodes flipping back and forth"
    region = scope["float_nodes"]
    assert sum(n["float_ms"] for n in region) < sum(n["int8_ms"] for n in region), "kept float: slower in INT8"
    graph = onnx.load(str(scripted.onnx_path)).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    reads = {n.name: n.input for n in graph.node}
    assert not any(reads[d][0] in dequantized or reads[d][1] in dequantized for d in depthwise), "float Conv nodes"
    assert all(reads[d][0] in dequantized for d in dense), "INT8 ones"
    assert scope["speedup_vs_fp32_head"] == {"all": 0.8, "auto": 1.333}
    none = next(c for c in scope["candidates"] if c["name"] == "none")
    assert none["cosine"] is None and none["meets_floor"] is None, "33 % slower than the pick: never measured"
    assert scope["measured_on"]["cpu"] == "scripted" and "on the scripted host" in scope["reason"]


@pytest.mark.skipif(detect_target() == "arm", reason="x86 only: ARM's INT8 depthwise kernels may well pay")
def test_on_this_host_the_slow_depthwise_region_never_ships_int8(mixed):
    """Measured on whatever x86 CPU runs the suite. Both hosts seen (AVX-512 VNNI: all-INT8 ~0.8x FP32, auto's
    mixed head ~1.3x; the CI runner: all-INT8 0.82x, the mixed head 0.90x, so the FP32 head shipped) keep the
    depthwise region float; whether the dense convolutions pay in INT8 is the host's to say."""
    scope = mixed["auto"].manifest["quantization"]["scope"]
    assert scope["chosen"] in ("partial", "none"), scope["reason"]
    convs = _convs(mixed["fp32"])
    depthwise = {name for name, group in convs.items() if group > 1}
    graph = onnx.load(str(mixed["auto"].onnx_path)).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    reads = {n.name: n.input for n in graph.node}
    assert not any(reads[d][0] in dequantized or reads[d][1] in dequantized for d in depthwise), "float Conv nodes"
    region = scope["float_nodes"]
    if scope["chosen"] == "partial":
        assert sum(n["float_ms"] for n in region) < sum(n["int8_ms"] for n in region), "kept float: slower in INT8"


def test_the_manifest_records_the_nodes_the_candidates_and_the_host(mixed):
    import onnxruntime

    m = mixed["auto"].manifest
    scope = m["quantization"]["scope"]
    assert all({"node", "op", "float_ms", "int8_ms"} <= set(n) and n["float_ms"] >= 0 and n["int8_ms"] >= 0
               for n in scope["float_nodes"])
    candidates = {c["name"]: c for c in scope["candidates"]}
    names = list(candidates)
    assert names[0] == "all" and names[-1] == "none" and all(n.startswith("auto") for n in names[1:-1])
    assert scope["timing_passes"] in (1, 2)
    shipped = candidates[scope["candidate"]]
    for c in candidates.values():  # measured for fidelity where it could ship; else clearly slower
        assert c["p50_ms"] > 0 and (c["cosine"] >= 0.99 and c["meets_floor"] if c["cosine"] is not None
                                    else c["p50_ms"] > shipped["p50_ms"] * (1 + MARGIN) and "not measured" in c["fidelity"])
    fastest = min(c["p50_ms"] for c in candidates.values())
    assert shipped["p50_ms"] <= fastest * (1 + MARGIN) + 1e-4, "the fastest over the floor ships (a tie: more INT8)"
    assert scope["speedup_vs_fp32_head"]["auto"] == pytest.approx(
        candidates["none"]["p50_ms"] / shipped["p50_ms"], rel=0.01)
    assert m["fidelity"]["mean_cosine"] == pytest.approx(shipped["cosine"], abs=1e-5)
    host = scope["measured_on"]
    assert host["cpu"] and host["target"] == detect_target() and isinstance(host["flags"], list)
    assert host["onnxruntime"] == onnxruntime.__version__ and host["threads"]
    assert "specific to the host" in scope["note"] and "this host" in scope["reason"]
    if scope["chosen"] == "partial":
        assert "region" in scope["reason"]
    assert m["wire"] == mixed["all"].manifest["wire"], "the payload is unchanged: same int8 wire"
    assert m["precision"] == "int8" and m["export"]["int8_scope"] == "auto"


def test_auto_is_not_slower_than_fp32_where_all_int8_is(mixed):
    """Timed here, interleaved, batch 1. Tolerance 0.9: on this host the all-INT8 head runs at ~0.8x FP32 speed
    and auto's at ~1.3x; 0.9 leaves room for a busy 2-core machine (interleaved p50s drift a few percent) while a
    head that shipped the slow INT8 region would still fail it."""
    from edgesplit.runners.onnxrt import ort_session

    sessions = {k: ort_session(mixed[k].onnx_path, threads=1) for k in ("fp32", "auto", "all")}
    feed = {"input": np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)}
    times = {k: [] for k in sessions}
    for s in sessions.values():
        for _ in range(20):
            s.run(None, feed)
    for _ in range(60):
        for k, s in sessions.items():
            for _ in range(5):
                t0 = time.perf_counter()
                s.run(None, feed)
                times[k].append(time.perf_counter() - t0)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    assert p50["fp32"] / p50["auto"] >= 0.9, p50
    assert p50["auto"] < p50["all"] * 1.05, p50  # auto may ship the all-INT8 graph itself on a host where it wins


def test_all_keeps_every_quantizable_node_int8(mixed):
    m = mixed["all"].manifest
    assert m["quantization"]["scope"] == {"asked": "all", "chosen": "all"}
    graph = onnx.load(str(mixed["all"].onnx_path)).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == len(_convs(mixed["fp32"]))
    assert all(n.input[0] in dequantized for n in convs), "every Conv reads INT8 activations"


def test_auto_cannot_measure_another_machine():
    other = "arm" if detect_target() != "arm" else "x86"
    with pytest.raises(ExportError, match=f"--target {other} lays INT8 out for another machine.*--int8-scope all"):
        check_measurable(ExportConfig("classifier4", "features.0", "int8", target=other))
    check_measurable(ExportConfig("classifier4", "features.0", "int8", target=other, int8_scope="all"))
    check_measurable(ExportConfig("classifier4", "features.0", "fp32", target=other))  # no INT8 node to measure
    check_measurable(ExportConfig("classifier4", "features.0", "int8", target=detect_target()))
    with pytest.raises(ExportError, match="TensorRT engine: pass --int8-scope all"):
        ExportConfig("classifier4", "features.0", "int8", format="tensorrt")
    ExportConfig("classifier4", "features.0", "int8", format="tensorrt", int8_scope="all")
    with pytest.raises(ExportError, match="unknown int8_scope 'some'"):
        ExportConfig("classifier4", "features.0", "int8", int8_scope="some")


def _candidate(name, p50, cosine=0.999, top1_drop=0.0, samples=512, float_units=()):
    from edgesplit.export.int8_scope import Candidate

    fidelity = {"mean_cosine": cosine, "samples": samples, "tail_top1_fp32_features": 0.9,
                "tail_top1_exported_features": 0.9 - top1_drop}
    return Candidate(name, name, None, None, fidelity, frozenset(float_units), p50)


def test_the_fidelity_floor_is_cosine_and_at_most_one_point_or_one_image_of_top1():
    assert _candidate("all", 1.0).meets_floor
    assert not _candidate("all", 1.0, cosine=0.985).meets_floor
    assert not _candidate("all", 1.0, top1_drop=0.02).meets_floor
    assert _candidate("all", 1.0, top1_drop=1 / 64, samples=64).meets_floor, "one image of a 64-image split"
    assert _candidate("all", 1.0, top1_drop=-0.05).meets_floor, "a gain is no loss"


def test_the_fastest_candidate_over_the_floor_ships_and_more_quantized_wins_a_tie():
    from edgesplit.export.int8_scope import _pick

    assert _pick([_candidate("all", 1.0), _candidate("auto", 0.7, float_units={"a"}),
                  _candidate("none", 0.9, float_units={"a", "b"})]).name == "auto"
    assert _pick([_candidate("all", 1.0, cosine=0.9), _candidate("auto", 1.1, float_units={"a"}),
                  _candidate("none", 1.2, float_units={"a", "b"})]).name == "auto", "all is under the floor"
    assert _pick([_candidate("all", 1.01), _candidate("none", 1.0, float_units={"a"})]).name == "all", "within 2 %"
    assert _pick([_candidate("all", 1.05), _candidate("none", 1.0, float_units={"a"})]).name == "none"
    assert _pick([_candidate("all", 1.0, cosine=0.5), _candidate("none", 1.2, cosine=0.5)]).name == "all", \
        "no candidate keeps the floor (the wire itself loses): the fastest"


def test_fidelity_is_measured_only_for_candidates_that_could_ship():
    """A candidate's fidelity (a head over the held-out split and the tail on its features) is measured in order
    of speed, as far as the choice needs: where INT8 pays, the FP32 head with the INT8 wire is never measured."""
    from edgesplit.export.int8_scope import _pick, close_call

    measured = []

    def lazy(name, p50, cosine=0.999, float_units=()):
        c = _candidate(name, p50, cosine=cosine, float_units=float_units)
        record = c.fidelity
        c.fidelity = lambda: measured.append(name) or record
        return c

    candidates = [lazy("all", 1.0), lazy("none", 3.0, float_units={"a"})]
    assert _pick(candidates).name == "all" and not close_call(candidates) and measured == ["all"]
    assert candidates[1].record()["cosine"] is None and "not measured" in candidates[1].record()["fidelity"]
    measured.clear()
    candidates = [lazy("all", 1.0, cosine=0.9), lazy("none", 3.0, float_units={"a"})]
    assert _pick(candidates).name == "none" and measured == ["all", "none"], "all under the floor: the next one"
    measured.clear()
    candidates = [lazy("all", 1.01), lazy("none", 1.0, float_units={"a"})]
    assert _pick(candidates).name == "all" and sorted(measured) == ["all", "none"], "a tie: both measured"
    measured.clear()
    candidates = [lazy("all", 1.0), lazy("none", 1.08, float_units={"a"})]
    assert close_call(candidates) and sorted(measured) == ["all", "none"], "8 % apart: a second look, both measured"


class _FakeMeasurer:
    """A stand-in for the candidates' timing: each pass returns the next pass's samples (name -> ms)."""

    def __init__(self, *passes):
        self.passes, self.names = iter(passes), []

    def open(self, heads, feed):
        self.names = [str(h) for h in heads]

    def time_pass(self):
        samples = next(self.passes)
        return [samples[name] for name in self.names]


def test_a_close_call_is_timed_a_second_time_and_both_passes_decide():
    from edgesplit.export.int8_scope import close_call, timed_pick

    assert close_call([_candidate("all", 1.0), _candidate("none", 1.05, float_units={"a"})])
    assert not close_call([_candidate("all", 1.0), _candidate("none", 1.2, float_units={"a"})])
    assert not close_call([_candidate("all", 1.0)]), "nothing to compare with"
    # A first pass that reads all as fast as none (a tie: all would ship), then a second pass that sees the truth.
    measurer = _FakeMeasurer({"all": [1.0] * 3, "none": [1.0] * 3}, {"all": [1.4] * 9, "none": [1.0] * 9})
    every, none = _candidate("all", None), _candidate("none", None, float_units={"a"})
    chosen, passes = timed_pick([every, none], {}, measurer)
    assert (chosen.name, passes) == ("none", 2) and every.p50_ms == 1.4, "the samples of both passes decide"
    measurer = _FakeMeasurer({"all": [1.0] * 3, "none": [1.5] * 3})
    chosen, passes = timed_pick([_candidate("all", None), _candidate("none", None, float_units={"a"})], {}, measurer)
    assert (chosen.name, passes) == ("all", 1), "a clear first pass is not timed again"


def test_candidates_are_timed_alone_each_round_in_a_fresh_session(monkeypatch):
    """Round by round each head gets a session of its own, is warmed up untimed, timed for a block and dropped
    before the next head opens: no two sessions are ever alive at once (their idle workers would change what the
    timed one reads), and every head reaches min_samples over at least `rounds` rounds."""
    import time

    from edgesplit.export.int8_measure import time_pass

    log, alive = [], set()

    class _Session:
        def __init__(self, name, seconds):
            assert not alive, f"{name} opened while {alive} is alive"
            self.name, self.seconds = name, seconds
            alive.add(name)
            log.append(("open", name))

        def __del__(self):
            alive.discard(self.name)

        def run(self, outputs, feed):
            assert alive == {self.name}
            log.append(("run", self.name))
            end = time.perf_counter() + self.seconds
            while time.perf_counter() < end:
                pass

    monkeypatch.setattr("edgesplit.export.int8_measure.CLEAR", float("inf"))  # every round, clear winner or not
    cost = {"a": 0.0005, "b": 0.001}
    samples = time_pass(["a", "b"], {}, min_samples=40, min_seconds=0.0, rounds=3,
                        open_session=lambda head: _Session(head, cost[head]))
    assert min(map(len, samples)) >= 40
    assert 1.5 < (sum(samples[1]) / len(samples[1])) / (sum(samples[0]) / len(samples[0])) < 2.5, "each head's own"
    opens = [name for kind, name in log if kind == "open"]
    assert opens[:6] == ["a", "b"] * 3, "heads take turns, a fresh session every round"
    runs = sum(kind == "run" for kind, _ in log)
    assert runs > sum(map(len, samples)), "the warm-up calls run untimed"


def test_a_pass_with_a_clear_winner_ends_after_two_rounds():
    """A head 1.25x faster than every other after two rounds ends the pass (no close call to settle); a close
    pair runs every round."""
    import time

    from edgesplit.export.int8_measure import time_pass

    opened = []

    class _Session:
        def __init__(self, name, seconds):
            self.seconds = seconds
            opened.append(name)

        def run(self, outputs, feed):
            end = time.perf_counter() + self.seconds
            while time.perf_counter() < end:
                pass

    time_pass(["a", "b"], {}, min_samples=40, min_seconds=0.0, rounds=5,
              open_session=lambda head: _Session(head, {"a": 0.0005, "b": 0.0015}[head]))
    assert opened == ["a", "b"] * 2, "3x apart: two rounds"
    opened.clear()
    time_pass(["a", "b"], {}, min_samples=40, min_seconds=0.0, rounds=5,
              open_session=lambda head: _Session(head, {"a": 0.0010, "b": 0.0011}[head]))
    assert len(opened) >= 10, "10 % apart: every round"
