"""How far an exported head is from its FP32 reference head, on held-out data (written as fidelity.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesplit.errors import ExportError
from edgesplit.export.graph_reference import BATCH
from edgesplit.export.wire import WireFormat
from edgesplit.runners.onnxrt import ort_session, run_in_batches


def run_onnx(path: str | Path, images: np.ndarray, input_dtype: str, batch: int = BATCH) -> np.ndarray:
    """The head's raw outputs (wire values) for `images`, with onnxruntime on the CPU."""
    session = ort_session(path)  # CPU provider, onnxruntime's default threads
    return run_in_batches(session, images, batch, dtype=input_dtype)[0]


def _same_graph(path: str | Path, reference: Path | None) -> bool:
    """True when the ONNX file at `path` holds exactly the reference head's graph (nodes, weights, I/O)."""
    if reference is None:
        return False
    import onnx

    return onnx.load(str(path)).graph == onnx.load(str(reference)).graph


def feature_agreement(reference: np.ndarray, features: np.ndarray, chunk: int = 32) -> dict:
    """Max abs error, mean per-sample cosine similarity and SNR (dB) of `features` against `reference`.

    In float64, `chunk` samples at a time: a whole held-out split of early-cut features in float64 would take
    gigabytes (360 ResNet-18 layer1 maps: 94 M values, three arrays), and the sums are the same."""
    n = len(reference)
    cos = np.empty(n)
    max_err, abs_sum, noise, power, count = 0.0, 0.0, 0.0, 0.0, 0
    for i in range(0, n, chunk):
        ref = reference[i: i + chunk].reshape(min(chunk, n - i), -1).astype(np.float64)
        got = features[i: i + chunk].reshape(len(ref), -1).astype(np.float64)
        err = got - ref
        power_i = np.einsum("ij,ij->i", ref, ref)  # one pass each, no temporaries (einsum sums in float64)
        norms = np.sqrt(power_i) * np.sqrt(np.einsum("ij,ij->i", got, got))
        dots = np.einsum("ij,ij->i", ref, got)
        cos[i: i + len(ref)] = np.where(norms > 0, dots / np.where(norms > 0, norms, 1), 1.0)
        abs_err = np.abs(err)
        max_err = max(max_err, float(abs_err.max()))
        abs_sum += float(abs_err.sum())
        noise += float(np.einsum("ij,ij->", err, err))
        power += float(power_i.sum())
        count += err.size
    return {
        "max_abs_error": max_err,
        "mean_abs_error": abs_sum / count,
        "mean_cosine": float(cos.mean()),
        "min_cosine": float(cos.min()),
        "snr_db": float("inf") if noise == 0 else float(10 * np.log10(power / noise)),
    }


def measure_fidelity(onnx_path: str | Path, wire: WireFormat, input_dtype: str, source,
                     images: np.ndarray, labels: np.ndarray) -> dict:
    """Compare the exported head (decoded wire features) with the FP32 reference head of `source` (an
    `export.sources.HeadSource`: the PyTorch head, or onnxruntime running the FP32 ONNX head); tail accuracy
    with both."""
    # An fp32 head cut from an ONNX graph is the reference graph itself: the same file on the same runtime gives
    # the same features and logits, so they are not computed twice.
    same = wire.format == "fp32" and _same_graph(onnx_path, source.reference_graph())
    decoded = source.reference(images) if same else wire.decode(run_onnx(onnx_path, images, input_dtype))
    if not np.isfinite(decoded).all():
        raise ExportError("the exported head produced NaN or Inf features on held-out data: export at fp32, or "
                          "calibrate on data like the evaluation data")
    ref = source.reference(images)
    if ref.shape != decoded.shape:
        raise ExportError(f"exported head emits {decoded.shape[1:]}, the reference head {ref.shape[1:]}")
    logits_ref = source.reference_logits(images)
    logits_exp = logits_ref if same else source.tail_logits(decoded)
    labels = np.asarray(labels)
    return {
        **feature_agreement(ref, decoded),
        "samples": int(len(images)),
        "tail_top1_fp32_features": float((logits_ref.argmax(1) == labels).mean()),
        "tail_top1_exported_features": float((logits_exp.argmax(1) == labels).mean()),
        "tail_top1_agreement": float((logits_ref.argmax(1) == logits_exp.argmax(1)).mean()),
        "head_onnx_bytes": Path(onnx_path).stat().st_size,
    }
