"""Timing settings short enough for tests, and feature files written by hand (with a good or a bad meta record)."""

import json

import numpy as np

from edgesplit.runtime import TimingConfig

FAST = TimingConfig(warmup=2, iters=15, min_seconds=0.0)
FASTEST = TimingConfig(warmup=1, iters=2, min_seconds=0)  # where the timing itself is not what is checked


def feature_arrays(meta, rows: int = 3, drop: str | None = None) -> dict:
    arrays = {"features": np.zeros((rows, 4), np.float32), "ids": np.arange(rows, dtype=np.int64),
              "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    arrays.pop(drop, None)
    return arrays


GOOD_META = {"schema": "edgesplit.features", "schema_version": 1, "bundle": "b", "bundle_sha256": "0" * 64,
             "wire": {"format": "fp32", "dtype": "float32", "scale": None, "zero_point": None},
             "output_shape": [None, 4], "data": {"name": "digits", "split": "attack", "seed": 0}}
