"""A sweep's wall time in one process vs shared by N processes (`edgesplit sweep --nproc N`), same spec, one run.

    python benchmarks/sweep_processes.py [--nproc 2] [--cuts features.0,features.1,features.2,features.3]

The spec: classifier4 at 1x32x32 on the embedded digits, the given cuts at fp32 and int8, onnxruntime
profiles, the audit's default decoders (auto: deconv and nonoverlap, worst case) with a short epoch ceiling so
the run fits a few minutes. Both sweeps run as a user runs them (the CLI, in a subprocess, into a fresh
folder), one after the other, on the CPU (train_device cpu). Printed: each wall time, the ratio, and the
largest PSNR difference between the two sweeps' audits (1 vs cores/N threads per decoder: float sums differ,
the attack does not).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

SPEC = """\
[sweep]
precisions = ["fp32", "int8"]
backends = ["ort"]
train_device = "cpu"

[[sweep.models]]
name = "classifier4"
input = "1x32x32"
cuts = {cuts}

[profile]
iters = 50
min_seconds = 0.2

[attack]
epochs = {epochs}
learning_curve = false
"""


def sweep(spec: Path, out: Path, nproc: int) -> float:
    argv = [sys.executable, "-m", "edgesplit.cli.main", "sweep", str(spec), "--out", str(out), "--quiet"]
    if nproc > 1:
        argv += ["--nproc", str(nproc)]
    start = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - start


def audits(out: Path) -> dict:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return {(r["cut"], r["precision"], r["decoder"]): r["psnr"] for r in rows
            if r["step"] == "audit" and r["status"] == "ok"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--cuts", default="features.0,features.1,features.2,features.3")
    ap.add_argument("--epochs", type=int, default=15)
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.toml"
        spec.write_text(SPEC.format(cuts=json.dumps(args.cuts.split(",")), epochs=args.epochs))
        one = sweep(spec, Path(tmp) / "one", 1)
        shared = sweep(spec, Path(tmp) / "shared", args.nproc)
        a, b = audits(Path(tmp) / "one"), audits(Path(tmp) / "shared")
    assert a.keys() == b.keys() and a, "both sweeps must audit the same units"
    worst = max(abs(a[k] - b[k]) for k in a)
    print(f"audits: {len(a)} per sweep; largest PSNR difference between the sweeps {worst:.3f} dB")
    print(f"| sweep | wall s | vs one process |\n|---|---|---|\n| 1 process | {one:.1f} | 1.00x |\n"
          f"| {args.nproc} processes (--nproc) | {shared:.1f} | {one / shared:.2f}x |")


if __name__ == "__main__":
    main()
