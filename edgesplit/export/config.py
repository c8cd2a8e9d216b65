"""What to export: `ExportConfig` (validated on construction, JSON round-trip)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from edgesplit.errors import ExportError, closest
from edgesplit.vocab import DEFAULT_WIRE, INT8_SCOPES, PRECISIONS, WIRES

FORMATS = ("onnx", "tensorrt")
CALIB_METHODS = ("minmax", "entropy", "percentile")
TRT_INT8_MODES = ("explicit", "implicit")
MIN_CALIB_SAMPLES = 16
MAX_CALIB_SAMPLES = 8192


@dataclass(frozen=True)
class ExportConfig:
    """One head to export. `wire` None means the precision's own (int8 head -> int8 wire)."""

    model: str  # a model name, or the path of an ONNX file (then `cut` is a tensor of it)
    cut: str
    precision: str = "fp32"
    checkpoint: str | None = None
    input_shape: tuple[int, int, int] | None = None  # C, H, W; None = the checkpoint's (or 3x32x32)
    num_classes: int | None = None
    wire: str | None = None
    format: str = "onnx"
    target: str = "auto"  # INT8 layout: auto | x86-vnni | x86 | arm | tensorrt
    int8_scope: str = "auto"  # which nodes of an int8 head are INT8: auto (measured here) | all
    calib_data: str = "digits"
    calib_root: str | None = None
    calib_split: str = "train"
    calib_size: int = 256
    calib_method: str = "minmax"
    calib_percentile: float = 99.99
    eval_split: str = "test"
    eval_size: int = 512
    seed: int = 0
    opset: int = 18
    trt_int8: str = "explicit"  # explicit: from the Q/DQ graph; implicit: TensorRT calibrator + cache
    trt_workspace_mb: int = 1024
    max_batch: int = 32

    def __post_init__(self) -> None:
        for name, value, valid in (("precision", self.precision, PRECISIONS), ("format", self.format, FORMATS),
                                   ("calib_method", self.calib_method, CALIB_METHODS),
                                   ("trt_int8", self.trt_int8, TRT_INT8_MODES),
                                   ("int8_scope", self.int8_scope, INT8_SCOPES)):
            if value not in valid:
                raise ExportError(f"unknown {name} {value!r}: use one of {', '.join(valid)}")
        if self.precision == "int8" and self.int8_scope == "auto" and self.format == "tensorrt":
            raise ExportError("--int8-scope auto measures the head with onnxruntime on this CPU, which says nothing "
                              "about a TensorRT engine: pass --int8-scope all (every quantizable node INT8)")
        if self.wire is not None and self.wire not in WIRES:
            raise ExportError(f"unknown wire format {self.wire!r}: use one of {', '.join(WIRES)}")
        if self.calib_split == self.eval_split:
            raise ExportError(f"calibration split and evaluation split are both {self.calib_split!r}: calibrate "
                              f"on another split (e.g. --calib-split train) so the fidelity check is held out")
        if self.needs_calibration and self.calib_size < MIN_CALIB_SAMPLES:
            raise ExportError(f"--calib-size {self.calib_size} is too small: INT8 calibration needs at least "
                              f"{MIN_CALIB_SAMPLES} samples (256 is a good default)")
        if self.calib_size > MAX_CALIB_SAMPLES:
            raise ExportError(f"--calib-size {self.calib_size} is over {MAX_CALIB_SAMPLES}: calibration keeps "
                              f"activations in memory; a few hundred samples are enough")
        if not 90.0 <= self.calib_percentile < 100.0:
            raise ExportError(f"calib_percentile must be in [90, 100), got {self.calib_percentile}")
        if self.eval_size < 1 or self.max_batch < 1:
            raise ExportError("eval_size and max_batch must be >= 1")
        if self.opset < 17:
            raise ExportError(f"opset {self.opset} is too old: use 17 or newer")
        if self.is_onnx and (self.checkpoint or self.num_classes is not None):
            raise ExportError(f"{self.model} is an ONNX model: its weights and classes are in the file; drop "
                              f"--checkpoint and --num-classes")

    @property
    def is_onnx(self) -> bool:
        """The head is cut from a shipped ONNX file (`model` is its path) rather than built from a name."""
        return str(self.model).lower().endswith(".onnx")

    @property
    def wire_format(self) -> str:
        return self.wire or DEFAULT_WIRE[self.precision]

    @property
    def needs_calibration(self) -> bool:
        return self.precision == "int8" or (self.wire or DEFAULT_WIRE[self.precision]) == "int8"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape) if self.input_shape else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ExportConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ExportError(f"unknown export option {unknown[0]!r} ({closest(unknown[0], known)})")
        d = dict(d)
        if d.get("input_shape") is not None:
            d["input_shape"] = tuple(d["input_shape"])
        return cls(**d)
