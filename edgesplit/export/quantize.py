"""Static INT8 post-training quantization in QDQ format (onnxruntime), per-channel weights."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from edgesplit.export.calibration import calibrate
from edgesplit.export.int8_targets import QuantScheme
from edgesplit.progress import Progress

_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def preprocess(src: str | Path, dst: str | Path) -> Path:
    """onnxruntime's recommended pre-processing: symbolic shape inference and graph optimisation."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with _quiet():
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=False)
    return Path(dst)


def quantize_int8(pre_path: str | Path, dst: str | Path, images: np.ndarray, method: str, scheme: QuantScheme,
                  workdir: str | Path, percentile: float = 99.99, progress: Progress | None = None):
    """Calibrate `pre_path` on `images`, write the QDQ model to `dst`; return (ranges, cache path)."""
    from onnxruntime.quantization.calibrate import save_tensors_data

    ranges = calibrate(pre_path, images, method, symmetric=scheme.activation_symmetric, percentile=percentile,
                       progress=progress)
    cache = Path(workdir) / f"ranges.{method}.json"
    save_tensors_data(ranges, cache)
    quantize_cached(pre_path, dst, cache, method, scheme)
    return ranges, cache


def quantize_cached(pre_path: str | Path, dst: str | Path, cache: str | Path, method: str, scheme: QuantScheme,
                    nodes_to_exclude: list[str] | None = None) -> Path:
    """The QDQ model of `pre_path` from calibration ranges already in `cache` (no calibration run); the nodes
    named in `nodes_to_exclude` stay float (onnxruntime's own option: it places the Q/DQ at their edges)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with _quiet():
        quantize_static(
            str(pre_path), str(dst), None,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=scheme.reduce_range,
            activation_type=QuantType[scheme.activation_type],
            weight_type=QuantType[scheme.weight_type],
            nodes_to_exclude=nodes_to_exclude or None,
            calibrate_method=getattr(CalibrationMethod, _METHODS[method]),
            extra_options={"ActivationSymmetric": scheme.activation_symmetric,
                           "WeightSymmetric": scheme.weight_symmetric},
            calibration_cache_path=cache,
        )
    return Path(dst)


@contextlib.contextmanager
def _quiet():
    """onnxruntime's quantization tools print and log progress; the library stays silent."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)
