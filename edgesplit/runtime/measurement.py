"""`Measurement`: one row per (bundle, backend, device, batch), with latency percentiles and memory.

Rows are plain JSON objects (schema "edgesplit.measurement" v1) so pandas reads a results file directly.
"""

from __future__ import annotations

import datetime as dt
import statistics

import numpy as np

SCHEMA = "edgesplit.measurement"
SCHEMA_VERSION = 1


def summarise(samples_s: list[float], batch: int) -> dict:
    """Latency summary in milliseconds, and throughput in samples per second, from per-call seconds."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
    mean = float(ms.mean())
    return {
        "latency_ms": {"mean": mean, "p50": p50, "p90": p90, "p99": p99,
                       "std": float(statistics.pstdev(ms.tolist())) if len(ms) > 1 else 0.0,
                       "min": float(ms.min()), "max": float(ms.max())},
        "iterations": int(len(ms)),
        "timed_seconds": float(ms.sum() / 1e3),
        "throughput_per_s": float(batch / (p50 / 1e3)) if p50 > 0 else float("inf"),
    }


def measurement_row(*, bundle, backend_info: dict, batch: int, samples_s: list[float], load_seconds: float,
                    memory: dict, environment: dict, settings: dict, gpu: dict | None = None) -> dict:
    """A measured row; `kind` is always "measured" (estimates are kept apart, see edgesplit.devices.roofline).
    `gpu` (GPU backends only; rows without it are CPU rows or older): the GPU, its versions, clocks, capture."""
    m = bundle.manifest
    row = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "measured",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "bundle": bundle.path.name, "bundle_sha256": bundle.sha256,
        "model": m["model"]["name"], "cut": m["cut"]["name"], "precision": m["precision"],
        "wire": m["wire"]["format"], "payload_bytes_per_sample": m["wire"]["bytes_per_sample"],
        "backend": backend_info.get("backend"), "batch": batch,
        **summarise(samples_s, batch),
        "load_seconds": load_seconds,
        "memory": memory,
        "backend_info": backend_info,
        "settings": settings,
        "environment": environment,
    }
    if gpu is not None:
        row["gpu"] = gpu
    return row
