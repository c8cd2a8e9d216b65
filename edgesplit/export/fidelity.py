"""How far an exported head is from the PyTorch FP32 head, on held-out data (written as fidelity.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgesplit.errors import ExportError
from edgesplit.export.wire import WireFormat
from edgesplit.models import Split
from edgesplit.runners.onnxrt import ort_session

BATCH = 64


def run_onnx(path: str | Path, images: np.ndarray, input_dtype: str, batch: int = BATCH) -> np.ndarray:
    """The head's raw outputs (wire values) for `images`, with onnxruntime on the CPU."""
    session = ort_session(path)  # CPU provider, onnxruntime's default threads
    name = session.get_inputs()[0].name
    outs = [session.run(None, {name: images[i: i + batch].astype(input_dtype)})[0]
            for i in range(0, len(images), batch)]
    return np.concatenate(outs)


def feature_agreement(reference: np.ndarray, features: np.ndarray) -> dict:
    """Max abs error, mean per-sample cosine similarity and SNR (dB) of `features` against `reference`."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    got = features.reshape(len(features), -1).astype(np.float64)
    err = got - ref
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1)
    cos = np.where(norms > 0, (ref * got).sum(1) / np.where(norms > 0, norms, 1), 1.0)
    noise = float((err ** 2).sum())
    return {
        "max_abs_error": float(np.abs(err).max()),
        "mean_abs_error": float(np.abs(err).mean()),
        "mean_cosine": float(cos.mean()),
        "min_cosine": float(cos.min()),
        "snr_db": float("inf") if noise == 0 else float(10 * np.log10((ref ** 2).sum() / noise)),
    }


@torch.no_grad()
def measure_fidelity(onnx_path: str | Path, wire: WireFormat, input_dtype: str, parts: Split,
                     images: np.ndarray, labels: np.ndarray) -> dict:
    """Compare the exported head (decoded wire features) with the PyTorch FP32 head; tail accuracy with both."""
    payload = run_onnx(onnx_path, images, input_dtype)
    decoded = wire.decode(payload)
    if not np.isfinite(decoded).all():
        raise ExportError("the exported head produced NaN or Inf features on held-out data: export at fp32, or "
                          "calibrate on data like the evaluation data")
    head, tail = parts.head.eval(), parts.tail.eval()
    ref = np.concatenate([head(torch.from_numpy(images[i: i + BATCH])).numpy() for i in range(0, len(images), BATCH)])
    if ref.shape != decoded.shape:
        raise ExportError(f"exported head emits {decoded.shape[1:]}, PyTorch head {ref.shape[1:]}")
    logits_ref = _tail_logits(tail, ref)
    logits_exp = _tail_logits(tail, decoded)
    labels = np.asarray(labels)
    return {
        **feature_agreement(ref, decoded),
        "samples": int(len(images)),
        "tail_top1_fp32_features": float((logits_ref.argmax(1) == labels).mean()),
        "tail_top1_exported_features": float((logits_exp.argmax(1) == labels).mean()),
        "tail_top1_agreement": float((logits_ref.argmax(1) == logits_exp.argmax(1)).mean()),
        "head_onnx_bytes": Path(onnx_path).stat().st_size,
    }


def _tail_logits(tail, features: np.ndarray) -> np.ndarray:
    return np.concatenate([tail(torch.from_numpy(features[i: i + BATCH]).float()).numpy()
                           for i in range(0, len(features), BATCH)])
