"""Does our timing agree with an established peer? edgesplit's onnxruntime p50 vs Polygraphy's, same model, same run.

    python benchmarks/latency_agreement.py [--size 224 --threads 1 --rounds 20]

For resnet18 and mobilenet_v3_small heads at three cuts, FP32 and INT8 (random-init, seeded; INT8
calibrated on the embedded digits): edgesplit's backend timing (monotonic clock around the session call)
and Polygraphy's OnnxrtRunner (`last_inference_time()` after `infer()`), each on its own session with the
same options, interleaved round by round. Prints the ratio per row (goal: within 5 %) and INT8/FP32 per cut.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, ort_session  # noqa: E402

from edgesplit.export import ExportConfig, export_bundle  # noqa: E402
from edgesplit.runners import get_runner  # noqa: E402

CUTS = {"resnet18": ["maxpool", "layer2.1", "layer4.1"],
        "mobilenet_v3_small": ["features.3", "features.8", "features.12"]}


def compare(bundle, threads: int, rounds: int, per_round: int) -> tuple[float, float]:
    from polygraphy.backend.onnxrt import OnnxrtRunner

    x = np.random.default_rng(0).random((1, *bundle.input["shape"][1:]), dtype=np.float32)
    ours, theirs = [], []
    with get_runner("ort", threads) as backend, OnnxrtRunner(ort_session(bundle.onnx_path, threads)) as peer:
        backend.load(bundle)
        call = backend.bind(backend.prepare(x))
        feed = {"input": x}
        for _ in range(10):
            call()
            peer.infer(feed)
        for _ in range(rounds):
            for _ in range(per_round):
                ours.append(backend.elapsed(call))
            for _ in range(per_round):
                peer.infer(feed)
                theirs.append(peer.last_inference_time())
    return statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--per-round", type=int, default=10)
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, cuts in CUTS.items():
            for cut in cuts:
                p50 = {}
                for precision in ("fp32", "int8"):
                    bundle = export_bundle(ExportConfig(model, cut, precision, input_shape=(3, args.size, args.size),
                                                        calib_size=32, eval_size=16),
                                           Path(tmp) / f"{model}-{cut}-{precision}")
                    ours, peer = compare(bundle, args.threads, args.rounds, args.per_round)
                    p50[precision] = ours
                    rows.append((model, cut, precision, ours, peer))
                rows[-1] += (p50["fp32"] / p50["int8"],)
    print(f"machine: {machine()}")
    print(f"input 3x{args.size}x{args.size}, batch 1, onnxruntime CPU, {args.threads} thread(s); "
          f"{args.rounds} rounds x {args.per_round} calls each, interleaved")
    print(f"{'model':<20}{'cut':<13}{'prec':<6}{'ours p50 ms':>12}{'polygraphy p50 ms':>19}{'ours/peer':>11}"
          f"{'int8 speed-up':>15}")
    for row in rows:
        model, cut, precision, ours, peer = row[:5]
        speed = f"{row[5]:.2f}x" if len(row) > 5 else ""
        print(f"{model:<20}{cut:<13}{precision:<6}{ours:>12.3f}{peer:>19.3f}{ours / peer:>11.3f}{speed:>15}")
    worst = max(abs(r[3] / r[4] - 1) for r in rows)
    print(f"largest disagreement: {100 * worst:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
