"""Per-kernel times of one ONNX graph on onnxruntime's CPU provider, from onnxruntime's own node profiler.

`profile_kernels(path, feed)` runs the graph with `SessionOptions.enable_profiling`, warm-up calls first, and
`parse_trace` reads the JSON trace onnxruntime writes (Chrome trace format): every `model_run` event is one
call, every `Node` event named `<node>_kernel_time` one kernel of the *optimized* graph (onnxruntime fuses
nodes, renames some and inserts layout changes, so these names are onnxruntime's, not the file's). A kernel's
time is the median over the calls after the warm-up of its summed durations in that call.
"""

from __future__ import annotations

import bisect
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SUFFIX = "_kernel_time"


@dataclass(frozen=True)
class KernelTime:
    """One kernel of the optimized graph: its name in the trace, its operator and its median time."""

    name: str
    op: str
    ms: float
    numel: int  # elements of its first output (a Q/DQ kernel's tensor size)


@dataclass(frozen=True)
class NodeProfile:
    kernels: dict[str, KernelTime]  # by kernel name, in the order they first ran
    run_ms: float  # median time of a whole call, as the trace measures it (profiling overhead included)
    runs: int  # calls the medians are over

    def to_dict(self) -> dict:
        """JSON-ready (the device runner's reply to a `profile_nodes` request)."""
        return {"kernels": [[k.name, k.op, k.ms, k.numel] for k in self.kernels.values()], "run_ms": self.run_ms,
                "runs": self.runs}

    @classmethod
    def from_dict(cls, d: dict) -> NodeProfile:
        kernels = [KernelTime(str(name), str(op), float(ms), int(numel)) for name, op, ms, numel in d["kernels"]]
        return cls({k.name: k for k in kernels}, float(d["run_ms"]), int(d["runs"]))


def parse_trace(events: list[dict], skip_runs: int = 0) -> NodeProfile:
    """The per-kernel medians of an onnxruntime profile trace, leaving out its first `skip_runs` calls."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    kept = runs[skip_runs:]
    if not kept:
        raise ValueError(f"the trace holds {len(runs)} calls, none after the {skip_runs} warm-up calls")
    starts = [start for start, _ in runs]
    per_run: dict[str, list[float]] = {}
    ops: dict[str, tuple[str, int]] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith(SUFFIX):
            continue
        index = bisect.bisect_right(starts, e["ts"]) - 1
        if index < skip_runs or e["ts"] > runs[index][1]:
            continue  # a warm-up call, or outside any call (session set-up)
        kernel = name[: -len(SUFFIX)]
        times = per_run.setdefault(kernel, [0.0] * len(kept))
        times[index - skip_runs] += e["dur"] / 1000.0  # the trace counts microseconds
        args = e.get("args", {})
        ops.setdefault(kernel, (args.get("op_name", "?"), _numel(args.get("output_type_shape"))))
    kernels = {k: KernelTime(k, ops[k][0], statistics.median(v), ops[k][1]) for k, v in per_run.items()}
    return NodeProfile(kernels, statistics.median((end - start) / 1000.0 for start, end in kept), len(kept))


def _numel(shapes) -> int:
    """Elements of the first output from the trace's `output_type_shape` ([{dtype: [dims]}])."""
    if not shapes or not isinstance(shapes[0], dict) or not shapes[0]:
        return 0
    dims = next(iter(shapes[0].values()))
    return int(np.prod(dims)) if dims else 1


def profile_kernels(path: str | Path, feed: dict[str, np.ndarray], runs: int = 30, warmup: int = 3,
                    threads: int | None = None, seconds: float = 0.3, min_runs: int = 5) -> NodeProfile:
    """Per-kernel medians of `runs` calls of the graph at `path` on `feed` (fewer, but at least `min_runs`, once
    `seconds` of calls have passed: a 20 ms graph's kernel medians are steady over 15 calls), after `warmup`
    calls (a session's first call pays its allocations)."""
    from edgesplit.runners.onnxrt import ort_session

    with tempfile.TemporaryDirectory(prefix="edgesplit-profile-") as tmp:
        session = ort_session(path, threads=threads, inter_op_threads=1, profile_prefix=str(Path(tmp) / "trace"))
        for _ in range(warmup):
            session.run(None, feed)
        end = time.perf_counter() + seconds
        for done in range(runs):
            session.run(None, feed)
            if done + 1 >= min_runs and time.perf_counter() >= end:
                break
        trace = session.end_profiling()
        events = json.loads(Path(trace).read_text())
    return parse_trace(events, skip_runs=warmup)
