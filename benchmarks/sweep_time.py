"""Wall time of sweeps (issue: bench): resnet18 at 64x64, all block cuts x fp32/fp16/int8 on onnxruntime CPU.

Measured in one run, side by side:
  A. the full sweep without audit (export + server tail + profile), time per step kind and per unit;
  B. the same spec run again: every step already done (the cost of resuming);
  C. how the time grows with the number of cuts (1, 2, 4, all), no audit;
  D. a short audit on top (2 cuts, int8 only, deconv decoder, 3 epochs, 128 attacker samples).

    python benchmarks/sweep_time.py [--iters 50]
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


def _spec(cuts, audit=False, precisions=("fp32", "fp16", "int8"), iters=50, epochs=3):
    return spec_from_dict({
        "sweep": {"models": [{"name": "resnet18", "input": "3x64x64", "cuts": cuts}], "precisions": list(precisions),
                  "backends": ["ort"], "decoders": ["deconv"], "audit": audit},
        "profile": {"warmup": 10, "iters": iters, "min_seconds": 0.2},
        "attack": {"epochs": epochs, "attack_limit": 128, "eval_limit": 64},
        "data": {"calib_size": 64},
    })


def _timed(spec, out):
    t0 = time.perf_counter()
    results = run_sweep(spec, out)
    return time.perf_counter() - t0, read_results(results)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=50)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        full, rows = _timed(_spec("blocks", iters=args.iters), tmp / "full")
        per_step = defaultdict(float)
        for r in rows:
            per_step[r["step"]] += r["seconds"]
        cuts = sorted({r["cut"] for r in rows if r["step"] == "export"}, key=lambda c: [r["cut"] for r in rows].index(c))
        units = len(cuts) * 3
        print(f"\nA. full sweep, no audit: {len(cuts)} block cuts x 3 precisions = {units} units, {len(rows)} rows, "
              f"{full:.1f} s wall ({full / units:.2f} s per unit)")
        for step, seconds in sorted(per_step.items(), key=lambda kv: -kv[1]):
            print(f"   {step:8s} {seconds:7.1f} s  ({seconds / full:5.1%})")
        resume, again = _timed(_spec("blocks", iters=args.iters), tmp / "full")
        print(f"\nB. the same spec again (all done): {resume:.2f} s, {len(again) - len(rows)} new rows; "
              f"resume / full = {resume / full:.3f}")
        print("\nC. growth with the number of cuts (no audit)")
        print("   cuts   wall s   s per unit")
        for n in (1, 2, 4):
            wall, _ = _timed(_spec(cuts[:n], iters=args.iters), tmp / f"n{n}")
            print(f"   {n:4d}   {wall:6.1f}   {wall / (3 * n):6.2f}")
        print(f"   {len(cuts):4d}   {full:6.1f}   {full / units:6.2f}")
        audit_wall, audit_rows = _timed(_spec(cuts[1:3], audit=True, precisions=("int8",), iters=args.iters),
                                        tmp / "audit")
        seconds = defaultdict(float)
        for r in audit_rows:
            seconds[r["step"]] += r["seconds"]
        print(f"\nD. short audit (2 cuts, int8, deconv 3 epochs, 128 attacker samples): {audit_wall:.1f} s wall; "
              + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
