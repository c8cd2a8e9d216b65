"""INT8 fidelity per cut: edgesplit (onnxruntime QDQ, three calibration methods) vs PyTorch's own FX PTQ.

    python benchmarks/int8_fidelity.py [--epochs 12 --cuts features.3,features.8,features.12]

MobileNetV3-Small at a CIFAR-100-sized input (3x32x32), TRAINED briefly on the embedded digits (so tail
accuracy means something), cut at three places. For each head: feature SNR and cosine vs the FP32 head,
the tail's top-1 with INT8 features vs FP32 features, and head size. The peer is the approach of seed
efficient-split-dnn-privacy: torch.ao FX graph-mode post-training static quantization (x86 qconfig).
"""

from __future__ import annotations

import argparse
import copy
import io
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

from edgesplit.data import load_dataset  # noqa: E402
from edgesplit.errors import EdgesplitError  # noqa: E402
from edgesplit.export import ExportConfig, export_bundle  # noqa: E402
from edgesplit.export.fidelity import feature_agreement, run_onnx  # noqa: E402
from edgesplit.models import create_model, save_checkpoint, split, train_classifier  # noqa: E402
from edgesplit.models.training import TrainConfig  # noqa: E402


def fx_ptq(head, calib: torch.Tensor):
    """PyTorch FX graph-mode PTQ (x86 qconfig: per-channel weights, histogram activations)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(copy.deepcopy(head).eval(), get_default_qconfig_mapping("x86"), (calib[:1],))
        with torch.no_grad():
            for i in range(0, len(calib), 32):
                prepared(calib[i: i + 32])
        return convert_fx(prepared)


def state_bytes(module) -> int:
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.getbuffer().nbytes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--cuts", default="features.3,features.8,features.12")
    p.add_argument("--calib-size", type=int, default=256)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    train = load_dataset("digits", split="train", channels=3)
    test = load_dataset("digits", split="test", channels=3)
    model = create_model("mobilenet_v3_small", num_classes=10, in_chans=3, img_size=32)
    result = train_classifier(model, train, test, TrainConfig(epochs=args.epochs, lr=2e-3))
    calib_x, _ = load_dataset("digits", split="train", channels=3, limit=args.calib_size).tensors()
    test_x, test_y = test.tensors()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(model, Path(tmp) / "mnv3.pt")
        for cut in args.cuts.split(","):
            parts = split(model, cut)
            with torch.no_grad():
                ref = parts.head(test_x).numpy()
                acc_fp32 = (parts.tail(torch.from_numpy(ref)).argmax(1) == test_y).float().mean().item()
            fp32 = export_bundle(ExportConfig("mobilenet_v3_small", cut, "fp32", checkpoint=str(ckpt), eval_size=64),
                                 Path(tmp) / f"{cut}-fp32")
            fp32_bytes = fp32.manifest["fidelity"]["head_onnx_bytes"]
            for method in ("minmax", "entropy", "percentile"):
                try:
                    b = export_bundle(ExportConfig("mobilenet_v3_small", cut, "int8", checkpoint=str(ckpt),
                                                   calib_method=method, calib_size=args.calib_size, eval_size=64),
                                      Path(tmp) / f"{cut}-{method}")
                except EdgesplitError as exc:
                    rows.append((cut, f"edgesplit {method}", None, None, None, None, fp32_bytes, None, str(exc)))
                    continue
                got = b.wire.decode(run_onnx(b.onnx_path, test_x.numpy(), "float32"))
                agree = feature_agreement(ref, got)
                with torch.no_grad():
                    acc = (parts.tail(torch.from_numpy(got)).argmax(1) == test_y).float().mean().item()
                rows.append((cut, f"edgesplit {method}", agree["snr_db"], agree["mean_cosine"], acc_fp32, acc,
                             fp32_bytes, b.manifest["fidelity"]["head_onnx_bytes"], ""))
            q = fx_ptq(parts.head, calib_x)
            with torch.no_grad():
                got = q(test_x).numpy()
                acc = (parts.tail(torch.from_numpy(got)).argmax(1) == test_y).float().mean().item()
            agree = feature_agreement(ref, got)
            rows.append((cut, "torch FX PTQ (peer)", agree["snr_db"], agree["mean_cosine"], acc_fp32, acc,
                         state_bytes(parts.head), state_bytes(q), "sizes: torch state_dict"))
    print(f"machine: {machine()}")
    print(f"mobilenet_v3_small, 3x32x32, trained {args.epochs} epochs on digits: test accuracy "
          f"{result.test_accuracy:.4f}; INT8 calibrated on {args.calib_size} train images, evaluated on "
          f"{len(test_x)} test images")
    print(f"{'cut':<12}{'method':<22}{'SNR dB':>8}{'cosine':>9}{'top1 fp32':>10}{'top1 int8':>10}{'drop pt':>9}"
          f"{'fp32 B':>10}{'int8 B':>10}{'ratio':>7}  note")
    for cut, method, snr, cos, a32, a8, b32, b8, note in rows:
        if snr is None:
            print(f"{cut:<12}{method:<22}{'failed':>8}  {note}")
            continue
        print(f"{cut:<12}{method:<22}{snr:>8.1f}{cos:>9.4f}{a32:>10.4f}{a8:>10.4f}{100 * (a32 - a8):>9.2f}"
              f"{b32:>10}{b8:>10}{b32 / b8:>7.2f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
