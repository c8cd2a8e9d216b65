"""The wire format: what the device sends (fp32, fp16, or 8-bit integers with a scale and zero-point).

Torch-free on purpose: the device runner, the receiver and the attacker all decode with numpy alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgesplit.errors import BundleError
from edgesplit.vocab import WIRE_DTYPES, WIRES

_NUMPY = {name: np.dtype(name).type for names in WIRE_DTYPES.values() for name in names}  # float32, ..., uint8


@dataclass(frozen=True)
class WireFormat:
    """`format` is fp32 | fp16 | int8; for int8, `dtype` is int8 or uint8 and real = (q - zero_point) * scale."""

    format: str
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    def __post_init__(self) -> None:
        if self.format not in WIRES:
            raise BundleError(f"unknown wire format {self.format!r}: use one of {', '.join(WIRES)}")
        if self.dtype not in _NUMPY:
            raise BundleError(f"unknown wire dtype {self.dtype!r}")
        if self.format == "int8" and (self.scale is None or self.zero_point is None or not self.scale > 0):
            raise BundleError("an int8 wire needs a positive scale and a zero_point")

    @property
    def itemsize(self) -> int:
        return np.dtype(_NUMPY[self.dtype]).itemsize

    @property
    def numpy_dtype(self):
        return _NUMPY[self.dtype]

    def decode(self, payload: np.ndarray) -> np.ndarray:
        """Wire values -> float32 features (dequantized exactly as the receiver does)."""
        payload = np.asarray(payload)
        if payload.dtype != self.numpy_dtype:
            raise BundleError(f"wire payload is {payload.dtype}, the bundle sends {self.dtype}")
        if self.format != "int8":
            return payload.astype(np.float32)
        # In float32 throughout: q - zero_point is exact in float32 (|q - zp| <= 255), and the product of two
        # float32 values rounded once to float32 is what float64 arithmetic then a cast to float32 gives.
        return (payload.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)

    def encode(self, features: np.ndarray) -> np.ndarray:
        """float features -> wire values (the reference for what a head with this wire emits)."""
        features = np.asarray(features, dtype=np.float32)
        if self.format != "int8":
            return features.astype(self.numpy_dtype)
        info = np.iinfo(self.numpy_dtype)
        q = np.rint(features / np.float32(self.scale)) + self.zero_point  # round half to even, as ONNX does
        return np.clip(q, info.min, info.max).astype(self.numpy_dtype)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> WireFormat:
        try:
            return cls(d["format"], d["dtype"], d.get("scale"), d.get("zero_point"))
        except (KeyError, TypeError) as exc:
            raise BundleError(f"manifest wire record is malformed ({exc}): re-export the bundle") from None


def int8_params(rmin: float, rmax: float, dtype: str, symmetric: bool) -> tuple[float, int]:
    """Scale and zero-point covering [rmin, rmax] (always including 0), as onnxruntime computes them."""
    rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
    info = np.iinfo(_NUMPY[dtype])
    qmin, qmax = int(info.min), int(info.max)
    if dtype == "int8" and symmetric:
        qmin = -qmax  # [-127, 127]: TensorRT's symmetric range
    if symmetric:
        bound = max(abs(rmin), abs(rmax))
        rmin, rmax = -bound, bound
    span = rmax - rmin
    if span <= 0:
        return 1.0, 0
    scale = span / (qmax - qmin)
    zero_point = 0 if (symmetric and dtype == "int8") else int(round(qmin - rmin / scale))
    if symmetric and dtype == "uint8":
        zero_point = 128
    return float(np.float32(scale)), int(np.clip(zero_point, qmin, qmax))
