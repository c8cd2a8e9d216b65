"""INT8 vs FP32 speed of one head on onnxruntime CPU, measured side by side in one process.

    python benchmarks/int8_speed.py [--model resnet18 --cut layer2.1 --size 224 --threads N]

Exports an fp32 and an int8 bundle of the same (random-init, seeded) head, calibrated on the embedded
digits, then times both interleaved: the ratio is what the issue asks (>= 2.5x on AVX-512 VNNI x86).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, ort_session, time_interleaved  # noqa: E402

from edgesplit.export import ExportConfig, detect_target, export_bundle  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--cut", default="layer2.1")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", default=f"1,{os.cpu_count()}",
                   help="comma list of onnxruntime intra-op thread counts to compare (default: 1 and all cores)")
    p.add_argument("--targets", default=None, help="comma list of INT8 targets to compare (default: this host's)")
    args = p.parse_args(argv)
    targets = args.targets.split(",") if args.targets else [detect_target()]
    with tempfile.TemporaryDirectory() as tmp:
        bundles = {"fp32": export_bundle(ExportConfig(args.model, args.cut, "fp32", input_shape=(3, args.size, args.size),
                                                      eval_size=16), Path(tmp) / "fp32")}
        for target in targets:
            bundles[f"int8-{target}"] = export_bundle(
                ExportConfig(args.model, args.cut, "int8", input_shape=(3, args.size, args.size), target=target,
                             calib_size=64, eval_size=16), Path(tmp) / target)
        x = np.random.default_rng(0).random((args.batch, 3, args.size, args.size), dtype=np.float32)
        results = {}
        for threads in [int(t) for t in args.threads.split(",")]:
            sessions = {k: ort_session(b.onnx_path, threads) for k, b in bundles.items()}
            results[threads] = time_interleaved(sessions, {k: {"input": x} for k in sessions})
    print(f"machine: {machine()}")
    print(f"{args.model} head up to {args.cut}, {args.size}x{args.size}, batch {args.batch}, onnxruntime CPU")
    print(f"{'threads':>7}  {'bundle':<16}{'p50 ms':>9}{'p90 ms':>9}{'speed-up vs fp32':>18}{'head bytes':>12}")
    for threads, result in results.items():
        base = result["fp32"]["p50"]
        for name, r in result.items():
            size = bundles[name].manifest["fidelity"]["head_onnx_bytes"]
            print(f"{threads:>7}  {name:<16}{r['p50']:>9.2f}{r['p90']:>9.2f}{base / r['p50']:>17.2f}x{size:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
