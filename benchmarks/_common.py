"""Shared helpers of the benchmark scripts: machine description and interleaved onnxruntime timing."""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np


def machine() -> str:
    import onnxruntime
    import torch

    from edgesplit.runtime.environment import cpu_model

    return (f"{cpu_model()} ({cpu_flags()}), {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}")


def cpu_flags() -> str:
    """The CPU flags that decide INT8 and training speed (VNNI, AVX-512, AVX2, BF16), as /proc/cpuinfo lists them."""
    wanted = ("avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "avx512f", "avx2")
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return "flags unknown"
    return " ".join(f for f in wanted if f in flags) or "no AVX2"


def ort_session(path, threads: int):
    """A plain onnxruntime CPU session (the independent peer of edgesplit's own, and heads timed as deployed:
    onnxruntime's default spinning workers)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_alone(paths: dict, feed: dict, threads: int, rounds: int = 30, per_round: int = 10) -> dict:
    """Median latency (ms) of each ONNX head as deployed and alone: every round, each head in turn gets a fresh
    session (onnxruntime's defaults, spinning workers on), 10 untimed calls and 20 ms of warm-up, `per_round`
    timed calls, and is dropped before the next opens (so no idle session's workers are alive while one is timed;
    rounds alternate the heads so drift hits all alike)."""
    samples = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            sess = ort_session(path, threads)
            calls, end = 0, time.perf_counter() + 0.02
            while calls < 10 or time.perf_counter() < end:  # warm-up: 10 calls and 20 ms
                sess.run(None, feed)
                calls += 1
            for _ in range(per_round):
                t0 = time.perf_counter()
                sess.run(None, feed)
                samples[name].append((time.perf_counter() - t0) * 1e3)
            del sess
    return {name: {"p50": statistics.median(v), "p90": float(np.percentile(v, 90)), "n": len(v)}
            for name, v in samples.items()}
