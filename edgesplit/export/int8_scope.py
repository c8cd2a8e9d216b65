"""`int8_scope = "auto"`: an INT8 head that is never slower than its FP32 head on the host that measured it.

Everything is measured on the machine the head is exported for, through a `int8_measure.Measurer`: this host
(`LocalMeasurer`), or a board over ssh (`runtime.remote_measure.SshMeasurer`, the on-device runner running the
same profiler and timing loop there). The decision below is the same code for both.

1. The all-INT8 head is made as before (`quantize.quantize_int8`); the FP32 head with the same INT8 wire is
   the other end.
2. onnxruntime's node profiler (`node_profile`) times every kernel of the float graph and of the all-INT8
   head on a batch-1 input (medians over calls after a warm-up); `int8_regions` maps the kernels back to the
   float graph's nodes and picks the regions to keep float, boundaries paid for.
3. Those nodes are left out of quantization with onnxruntime's own `nodes_to_exclude` (the calibration ranges
   of step 1 reused), giving the `auto` candidate, where the kernel times predict it at least 5 % faster
   than both ends (kernel sums leave out layout changes and fusions a mixed graph may lose).
4. Every candidate (all-INT8, auto, the FP32 head with the INT8 wire) must keep the fidelity floor on the
   held-out split (`fidelity.measure_fidelity`, against the source's reference computed once): mean cosine
   >= 0.99 and tail top-1 at most 1 point (or one image) below the FP32 features'. An auto candidate under
   the floor keeps more nodes float (the ones INT8 gains least on) and is checked again. A candidate is checked
   only when the choice needs it (`_pick` measures in order of speed, as far as the fastest over the floor and
   the margin reach): where INT8 pays, the FP32 head is far slower, and its check (seconds a cut) is skipped.
5. The candidates run on the measured machine as they will be deployed (the session options of a profile or an
   emit), each alone in turn, round by round (`int8_measure.time_pass`; batch 1, p50 of many calls); the fastest that keeps
   the floor ships, a candidate quantizing more preferred when it is within `MARGIN` of the fastest.

The wire is INT8 in every candidate: what the device sends does not change. The record (the manifest's
`quantization.scope`) names the nodes kept float with their times, every candidate's p50 and fidelity (where measured) and the
machine measured on (`measured_on`: this host's CPU, or the board's address and the CPU its runner reports): the
choice holds for that CPU and onnxruntime, not for another machine.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from edgesplit.errors import ExportError
from edgesplit.export.int8_measure import LocalMeasurer, Measurer
from edgesplit.export.int8_regions import Regions, attribute, build_regions, choose_float_units, float_regions

COSINE_FLOOR = 0.99
TOP1_POINTS = 0.01
MARGIN = 0.02  # a candidate quantizing more is kept unless another is faster by more than 2 %
SECOND_LOOK = 0.10  # a choice resting on less than 10 % over the fastest other head is timed a second time
MORE_FLOAT_TRIES = 2
MIN_PREDICTED_GAIN = 0.05  # a mixed head is built only where the measured kernels predict 5 % over both ends
NOTE = ("specific to the host it was measured on (measured_on): which nodes pay in INT8 depends on the CPU's INT8 "
        "kernels and onnxruntime's version; export again on (or for, with --device) the machine that runs the head")
PREFERENCE = ("all", "partial", "none")  # more quantized first: smaller heads, as asked, when the speed is a tie


def check_measurable(config, measurer: Measurer | None = None) -> None:
    """Refuse, before any work, an `auto` scope the measuring machine cannot measure: an INT8 layout for another
    machine. `measurer` (default: this host) is asked for its target; a board it cannot reach raises DeviceError."""
    if config.precision != "int8" or config.int8_scope != "auto" or config.target == "auto":
        return
    measurer = measurer or LocalMeasurer()
    there = measurer.target
    if config.target != there:
        fix = "export there" if measurer.where == "this host" else "drop --target (auto takes the board's)"
        raise ExportError(f"--int8-scope auto measures the head on {measurer.where} (a {there} CPU), but --target "
                          f"{config.target} lays INT8 out for another machine: {fix}, or pass "
                          f"--int8-scope all (every quantizable node INT8, measured nowhere)")


@dataclass
class Candidate:
    name: str
    path: Path  # the head as it would ship (wire set)
    model: onnx.ModelProto
    wire: object
    fidelity: dict | Callable[[], dict]  # how to measure it, until first needed (`measured`)
    float_units: frozenset = frozenset()
    p50_ms: float | None = None
    times_ms: list = field(default_factory=list)  # every timed call, over all timing passes

    @property
    def measured(self) -> dict:
        """The fidelity record, measured on first use (a head on the held-out split and the tail on its features:
        seconds at 64 px, so a candidate that cannot ship is never measured)."""
        if callable(self.fidelity):
            self.fidelity = self.fidelity()
        return self.fidelity

    @property
    def meets_floor(self) -> bool:
        f = self.measured
        slack = max(TOP1_POINTS, 1.0 / max(f["samples"], 1))  # 1 point, or one image of a small split
        return (f["mean_cosine"] >= COSINE_FLOOR
                and f["tail_top1_fp32_features"] - f["tail_top1_exported_features"] <= slack + 1e-9)

    @property
    def kind(self) -> str:
        return self.name if self.name in ("all", "none") else "partial"

    def record(self) -> dict:
        out = {"name": self.name, "p50_ms": None if self.p50_ms is None else round(self.p50_ms, 4)}
        if callable(self.fidelity):
            out.update(cosine=None, top1=None, meets_floor=None,
                       fidelity="not measured: slower than the shipped head by more than the margin")
        else:
            out.update(cosine=round(self.fidelity["mean_cosine"], 5),
                       top1=round(self.fidelity["tail_top1_exported_features"], 4), meets_floor=self.meets_floor)
        return {**out, "float_units": len(self.float_units)}


@dataclass
class ScopeChoice:
    chosen: Candidate
    record: dict
    candidates: list[Candidate] = field(default_factory=list)


Finish = Callable[[Path, Path], tuple]  # (graph, shipped head path) -> (model, wire, a function measuring its
# fidelity)
Quantize = Callable[[Path, list], Path]  # (destination, nodes to keep float) -> the QDQ graph


def choose_scope(fp32: Path, pre: Path, quantized: Path, workdir: Path, quantize: Quantize, finish: Finish,
                 input_shape: tuple[int, int, int], measurer: Measurer | None = None) -> ScopeChoice:
    """Measure, choose and return the head to ship (its file at `chosen.path`) with the manifest's record.

    `fp32`: the FP32 head; `pre`: the graph quantize_static read (every node named); `quantized`: its all-INT8
    QDQ graph; `quantize(dst, exclude)` re-quantizes `pre` with nodes left float; `finish(graph, dst)` sets the
    wire, checks the graph and measures its fidelity (here: fidelity needs the source). `measurer` (default: this
    host) profiles and times the heads on the machine exported for."""
    workdir = Path(workdir)
    measurer = measurer or LocalMeasurer()
    feed = {"input": np.random.default_rng(0).random((1, *input_shape), dtype=np.float32)}

    def make(name: str, graph: Path, float_units=frozenset()) -> Candidate:
        model, wire, measure = finish(graph, workdir / f"{name}.head.onnx")
        return Candidate(name, workdir / f"{name}.head.onnx", model, wire, measure, frozenset(float_units))

    every = make("all", quantized)  # each candidate's fidelity is measured only when the choice needs it
    none = make("none", fp32)
    float_model, quantized_model = onnx.load(str(pre)), onnx.load(str(quantized))
    regions = build_regions(float_model, quantized_model)
    attribute(regions, measurer.profile(pre, feed), measurer.profile(every.path, feed), float_model)
    quantizable = {h for h, u in regions.units.items() if u.quantizable}
    none.float_units = frozenset(quantizable)
    candidates = [every]
    float_units = choose_float_units(regions)
    if regions.cost(float_units) > (1 - MIN_PREDICTED_GAIN) * min(regions.cost(set()), regions.cost(quantizable)):
        float_units = set()  # too little to gain for what the kernel sums leave out (layouts, fusions)
    if not float_units and not every.meets_floor:  # nothing slow, but all-INT8 is under the floor
        float_units = _least_gain(regions, quantizable)
    for attempt in range(MORE_FLOAT_TRIES + 1):
        if not float_units or float_units >= quantizable:
            break
        name = "auto" if attempt == 0 else f"auto-{attempt + 1}"
        exclude = sorted(n for h in float_units for n in regions.units[h].nodes)
        auto = make(name, quantize(workdir / f"{name}.qdq.onnx", exclude), float_units)
        candidates.append(auto)
        if auto.meets_floor:
            break
        float_units = float_units | _least_gain(regions, quantizable - float_units)
    candidates.append(none)
    chosen, passes = timed_pick(candidates, feed, measurer)
    record = _record(chosen, candidates, regions, quantizable, measurer)
    return ScopeChoice(chosen, {**record, "timing_passes": passes}, candidates)


def _least_gain(regions: Regions, units: set[str]) -> set[str]:
    """The half of `units` that INT8 speeds up least (measured), to keep float next."""
    ranked = sorted(units, key=lambda h: regions.units[h].float_ms - regions.units[h].int8_ms)
    return set(ranked[: math.ceil(len(ranked) / 2)])


def _time(candidates: list[Candidate], measurer: Measurer) -> None:
    """One timing pass on the measurer's machine; every candidate's p50 over all its passes' samples."""
    for candidate, times in zip(candidates, measurer.time_pass(), strict=True):
        candidate.times_ms.extend(times)
        candidate.p50_ms = statistics.median(candidate.times_ms)


def timed_pick(candidates: list[Candidate], feed: dict, measurer: Measurer) -> tuple[Candidate, int]:
    """The head to ship, and how many timing passes chose it: a second pass when the first was a close call (one
    noisy pass must not ship a slower head; the samples of both passes decide). Each pass opens every head's
    session afresh, round by round (`int8_measure.time_pass`); on a board each pass is one runner call."""
    measurer.open([c.path for c in candidates], feed)
    _time(candidates, measurer)
    if not close_call(candidates):
        return _pick(candidates), 1
    _time(candidates, measurer)
    return _pick(candidates), 2


def close_call(candidates: list[Candidate]) -> bool:
    """True when another head that keeps the floor is within SECOND_LOOK of the head `_pick` ships. (The fastest
    other eligible head is within MARGIN < SECOND_LOOK when the pick is not the fastest itself, so "any other
    within SECOND_LOOK" is "the fastest other": only heads that near are measured for fidelity.)"""
    chosen = _pick(candidates)
    near = [c for c in candidates if c is not chosen
            and abs(chosen.p50_ms - c.p50_ms) <= SECOND_LOOK * min(chosen.p50_ms, c.p50_ms)]
    return any(c.meets_floor for c in near) or (bool(near) and not chosen.meets_floor)


def _pick(candidates: list[Candidate]) -> Candidate:
    """The fastest candidate that keeps the fidelity floor; one quantizing more wins a tie within MARGIN. Fidelity
    is measured in order of speed, only as far as the decision needs it (a candidate far slower than the fastest
    one over the floor is never measured). If none keeps the floor, the fastest ships."""
    by_speed = sorted(candidates, key=lambda c: c.p50_ms)
    fastest = next((c.p50_ms for c in by_speed if c.meets_floor), None)
    if fastest is None:  # every one measured, none over the floor
        eligible, fastest = candidates, by_speed[0].p50_ms
    else:
        eligible = [c for c in candidates if c.p50_ms <= fastest * (1 + MARGIN) and c.meets_floor]
    ranked = sorted(eligible, key=lambda c: (PREFERENCE.index(c.kind), len(c.float_units)))
    return next(c for c in ranked if c.p50_ms <= fastest * (1 + MARGIN))


def _record(chosen: Candidate, candidates: list[Candidate], regions: Regions, quantizable: set[str],
            measurer: Measurer) -> dict:
    float_units = chosen.float_units
    runs = float_regions(regions, set(float_units))
    by = {c.name: c for c in candidates}
    return {
        "asked": "auto",
        "chosen": chosen.kind,
        "candidate": chosen.name,
        "quantized_nodes": [n for h in sorted(quantizable - float_units) for n in regions.units[h].nodes],
        "float_nodes": [regions.units[h].record() for run in runs for h in run],
        "float_regions": [[regions.units[h].head for h in run] for run in runs],
        "candidates": [c.record() for c in candidates],
        "speedup_vs_fp32_head": {"all": round(by["none"].p50_ms / by["all"].p50_ms, 3),
                                 "auto": round(by["none"].p50_ms / chosen.p50_ms, 3)},
        "floor": {"mean_cosine": COSINE_FLOOR, "tail_top1_drop": TOP1_POINTS, "split": "the evaluation split"},
        "predicted_ms": {c.name: round(regions.cost(set(c.float_units)), 4) for c in candidates},
        "measured_on": measurer.measured_on(),
        "reason": _reason(chosen, candidates, len(runs), len(quantizable), measurer.where),
        "note": NOTE,
    }


def _reason(chosen: Candidate, candidates: list[Candidate], regions: int, units: int, where: str) -> str:
    times = ", ".join(f"{c.name} {c.p50_ms:.3f} ms" for c in candidates)
    if not chosen.meets_floor:  # `_pick` ships one under the floor only when every candidate is
        return (f"no candidate keeps the fidelity floor (the INT8 wire alone loses that much here): the fastest "
                f"was kept ({times})")
    if chosen.kind == "none":
        return (f"nothing was worth quantizing on {where}: the FP32 head ships with the {chosen.wire.format} wire "
                f"({times})")
    if chosen.kind == "all":
        return f"every quantizable node pays in INT8 on {where} ({times})"
    return (f"{regions} region{'s' if regions != 1 else ''} ({len(chosen.float_units)} of {units} quantizable "
            f"units) stay float, slower in INT8 on {where} ({times})")
