"""INT8 calibration with onnxruntime's calibrators, fed in bounded chunks from an edgesplit data split.

Each method is configured so it really differs: entropy and percentile use 2048-bin histograms
(onnxruntime's quantize_static default histogram leaves entropy identical to minmax).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

from edgesplit.errors import ExportError
from edgesplit.progress import Progress, resolve

CHUNK = 64  # samples per collect_data call: bounds the activations held in memory
BATCH = 16


class ArrayReader:
    """onnxruntime `CalibrationDataReader` over an array of images, in batches."""

    def __init__(self, images: np.ndarray, input_name: str, batch: int = BATCH) -> None:
        self.images, self.input_name, self.batch = images, input_name, batch
        self.pos = 0

    def get_next(self):
        if self.pos >= len(self.images):
            return None
        chunk = self.images[self.pos: self.pos + self.batch]
        self.pos += self.batch
        return {self.input_name: chunk}

    def __iter__(self):
        while (item := self.get_next()) is not None:
            yield item

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch)


def calibrate(onnx_path: str | Path, images: np.ndarray, method: str, symmetric: bool, percentile: float = 99.99,
              input_name: str = "input", progress: Progress | None = None):
    """Ranges of every tensor of `onnx_path` over `images` (an onnxruntime TensorsData)."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    if len(images) == 0:
        raise ExportError("the calibration set is empty: check --calib-data, --calib-split and --calib-size")
    options = {"symmetric": symmetric}
    if method == "entropy":
        options.update(num_bins=2048, num_quantized_bins=128)
    elif method == "percentile":
        options.update(num_bins=2048, percentile=percentile)
    enum = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[method]
    progress = resolve(progress)
    sink = io.StringIO()  # onnxruntime's histogram calibrators print progress to stdout
    with tempfile.TemporaryDirectory(prefix="edgesplit-calib-") as tmp, contextlib.redirect_stdout(sink):
        calibrator = create_calibrator(Path(onnx_path), None, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=enum, extra_options=options)
        with progress.task(f"calibrating ({method})", total=len(images)) as task:
            for start in range(0, len(images), CHUNK):
                chunk = images[start: start + CHUNK]
                calibrator.collect_data(ArrayReader(chunk, input_name))
                task.update(len(chunk))
        try:
            ranges = calibrator.compute_data()
        except ValueError as exc:
            if "bins" in str(exc):
                raise ExportError(f"{method} calibration failed: a tensor's range is too small for its histogram "
                                  f"({exc}); use --calib-method minmax or entropy") from None
            raise
        finally:
            del calibrator
    return ranges


def tensor_range(ranges, name: str) -> tuple[float, float]:
    """(min, max) of one tensor from calibration ranges."""
    if name not in ranges.data:
        raise ExportError(f"calibration recorded no range for tensor {name!r}")
    data = ranges.data[name]
    low, high = (np.asarray(v).astype(np.float64) for v in data.range_value)
    return float(low.min()), float(high.max())
