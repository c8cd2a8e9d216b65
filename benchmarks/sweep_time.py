"""Wall time of a sweep without audit (issue 15): the per-cut export path vs the export-once path, side by side.

resnet18 at 3x64x64 (random-init, seeded), every block cut x fp32/fp16/int8, onnxruntime CPU, no audit. In one
run on one machine:
  A. per-cut path (`run_sweep(..., export_once=False)`): every head exported from PyTorch on its own, the
     fidelity reference and the tail run by PyTorch, once per unit;
  B. export-once path (the default): the model exported to ONNX once, every head cut from that graph, each
     precision starting from the same FP32 head; reference and tail run by onnxruntime, the reference once
     per cut;
  then each unit's fidelity record in A and B side by side (they must agree: the same head, another route),
  and where the time goes in each (per step kind).
The order alternates with --order (ab or ba) so a drifting machine does not favour one path.

    python benchmarks/sweep_time.py [--model resnet18] [--input 3x64x64] [--order ab]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import machine  # noqa: E402

from edgesplit.bench import read_results, run_sweep, spec_from_dict  # noqa: E402

FIELDS = ("mean_cosine", "max_abs_error", "snr_db", "tail_top1_fp32_features", "tail_top1_exported_features")


def _spec(model: str, shape: str, iters: int):
    return spec_from_dict({
        "sweep": {"models": [{"name": model, "input": shape, "cuts": "blocks"}],
                  "precisions": ["fp32", "fp16", "int8"], "backends": ["ort"], "decoders": ["deconv"], "audit": False},
        "profile": {"warmup": 10, "iters": iters, "min_seconds": 0.2},
        "data": {"calib_size": 64},
    })


def _run(spec, out: Path, export_once: bool) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    results = run_sweep(spec, out, export_once=export_once)
    return time.perf_counter() - t0, read_results(results)


def _by_step(rows: list[dict]) -> dict[str, float]:
    seconds: dict[str, float] = defaultdict(float)
    for r in rows:
        seconds[r["step"]] += r["seconds"]
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--input", default="3x64x64")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--order", choices=("ab", "ba"), default="ab")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    spec = _spec(args.model, args.input, args.iters)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.order:
            once = path == "b"
            runs[path] = _run(spec, Path(tmp) / path, once)
            print(f"{'B. export once' if once else 'A. per-cut export'}: {runs[path][0]:.1f} s", flush=True)
    (wall_a, rows_a), (wall_b, rows_b) = runs["a"], runs["b"]
    units = sum(1 for r in rows_a if r["step"] == "export")
    print(f"\n{args.model} @ {args.input}, {units} units (block cuts x fp32/fp16/int8), no audit")
    print(f"   per-cut export   {wall_a:7.1f} s  ({wall_a / units:5.2f} s per unit)")
    print(f"   export once      {wall_b:7.1f} s  ({wall_b / units:5.2f} s per unit)")
    print(f"   speed-up         {wall_a / wall_b:7.2f}x")
    steps_a, steps_b = _by_step(rows_a), _by_step(rows_b)
    print("\n   step      per-cut s   once s")
    for step in sorted(set(steps_a) | set(steps_b), key=lambda s: -steps_a.get(s, 0)):
        print(f"   {step:8s} {steps_a.get(step, 0):9.1f} {steps_b.get(step, 0):8.1f}")
    print("\nfidelity per unit (per-cut | once); |difference|:")
    a = {(r["cut"], r["precision"]): r for r in rows_a if r["step"] == "export" and r["status"] == "ok"}
    b = {(r["cut"], r["precision"]): r for r in rows_b if r["step"] == "export" and r["status"] == "ok"}
    worst = defaultdict(float)
    for key in a:
        if key not in b:
            print(f"   {key}: missing from the export-once run ({b.get(key, {}).get('reason')})")
            continue
        fa, fb = a[key]["fidelity"], b[key]["fidelity"]
        diffs = {f: abs(fa[f] - fb[f]) for f in FIELDS
                 if isinstance(fa.get(f), float) and float("inf") not in (abs(fa[f]), abs(fb[f]))}
        for f, d in diffs.items():
            worst[f] = max(worst[f], d)
        print(f"   {key[0]:10s} {key[1]}  cos {fa['mean_cosine']:.5f} | {fb['mean_cosine']:.5f}   max err "
              f"{fa['max_abs_error']:.2e} | {fb['max_abs_error']:.2e}   top-1 {fa['tail_top1_exported_features']:.3f}"
              f" | {fb['tail_top1_exported_features']:.3f}   head from: {b[key].get('head_from')}")
    print("   largest |difference|: " + ", ".join(f"{f} {d:.2e}" for f, d in worst.items()))


if __name__ == "__main__":
    main()
