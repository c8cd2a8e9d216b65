"""Do the sweep's timing rows agree with a peer, and are its server tails consistent with the whole model?
(issue 13, item 15)

    python benchmarks/sweep_timing.py [--repeats 3] [--threads 1]

Heads: classifier4 at 1x32x32 (the demo's model, random-init, seeded), every block cut at FP32 and INT8,
exported once. Each head is timed by `edgesplit.runtime.profile.profile_bundle` (what a sweep's profile step
runs) with the profile settings of the old sweep default (warm-up 10, 50 calls, 0.5 s) and of the current
`ProfileSpec` default, and by Polygraphy's OnnxrtRunner on its own session (same thread count), `--repeats`
times in alternation; printed: each setting's p50 over Polygraphy's median, worst and spread over repeats.

Tails: `edgesplit.bench.server.time_tail` for the whole model and every cut's tail, once in a fresh process
state and once after a torch head was profiled with one thread (what a sweep with a torch backend did before
the tails were timed): every tail must be faster than the whole model. Prints the machine.
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

OLD = {"warmup": 10, "iters": 50, "min_seconds": 0.5}


def peer_p50(bundle, threads: int, calls: int = 400) -> float:
    from polygraphy.backend.onnxrt import OnnxrtRunner

    x = np.random.default_rng(0).random((1, *bundle.input["shape"][1:]), dtype=np.float32)
    with OnnxrtRunner(ort_session(bundle.onnx_path, threads)) as peer:
        for _ in range(20):
            peer.infer({"input": x})
        times = []
        for _ in range(calls):
            peer.infer({"input": x})
            times.append(peer.last_inference_time())
    return statistics.median(times) * 1e3


def ours_p50(bundle, threads: int, setting: dict) -> float:
    from edgesplit.runtime.profile import profile_bundle
    from edgesplit.runtime.timing import TimingConfig

    rows = profile_bundle(bundle.path, "ort", (1,), TimingConfig(**setting), threads)
    return rows[0]["latency_ms"]["p50"]


def heads(tmp: Path, threads: int, repeats: int) -> float:
    from edgesplit.bench.spec import ProfileSpec
    from edgesplit.export import ExportConfig, export_bundle

    spec = ProfileSpec()
    new = {"warmup": spec.warmup, "iters": spec.iters, "min_seconds": spec.min_seconds}
    print(f"old sweep default {OLD}; current default {new}; {threads} thread(s); {repeats} repeats each")
    print(f"{'cut':<12}{'prec':<6}{'peer ms':>9}{'old/peer worst':>16}{'old spread':>12}"
          f"{'new/peer worst':>16}{'new spread':>12}")
    worst_new = 0.0
    for cut in ("features.0", "features.1", "features.2", "features.3", "fc.1"):
        for precision in ("fp32", "int8"):
            bundle = export_bundle(ExportConfig("classifier4", cut, precision, input_shape=(1, 32, 32),
                                                calib_size=64, eval_size=16), tmp / f"{cut}-{precision}")
            ratios = {"old": [], "new": []}
            for _ in range(repeats):
                peer = peer_p50(bundle, threads)
                for name, setting in (("old", OLD), ("new", new)):
                    ratios[name].append(ours_p50(bundle, threads, setting) / peer)
            cells = []
            for name in ("old", "new"):
                r = ratios[name]
                worst = max(r, key=lambda v: abs(v - 1))
                cells += [f"{worst:>16.3f}", f"{max(r) - min(r):>12.3f}"]
            worst_new = max(worst_new, max(abs(v - 1) for v in ratios["new"]))
            print(f"{cut:<12}{precision:<6}{peer:>9.4f}{''.join(cells)}")
    return worst_new


def tails() -> bool:
    import torch

    from edgesplit.bench.server import time_tail
    from edgesplit.bench.spec import ProfileSpec
    from edgesplit.models import create_model
    from edgesplit.models.cuts import analyse

    ok = True
    for name, shape in (("classifier4", (1, 32, 32)), ("resnet18", (3, 64, 64))):
        torch.manual_seed(0)
        model = create_model(name, img_size=shape[1], in_chans=shape[0], num_classes=10).eval()
        cuts = analyse(model, torch.zeros(1, *shape)).blocks[:4]
        for label, threads_before in (("fresh", None), ("after a 1-thread torch head", 1)):
            if threads_before:
                torch.set_num_threads(threads_before)
            whole = time_tail(model, None, shape, ProfileSpec())
            row = [f"whole {whole['tail_ms']:.3f}"]
            for cut in cuts:
                t = time_tail(model, cut, shape, ProfileSpec())
                ok &= t["tail_ms"] <= whole["tail_ms"] * 1.05
                row.append(f"{cut.name} {t['tail_ms']:.3f}")
            print(f"{name} {'x'.join(map(str, shape))} {label} (threads {whole['threads']}): ms " + ", ".join(row))
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="head threads (the sweep's [profile] threads)")
    args = p.parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        worst = heads(Path(tmp), args.threads, args.repeats)
    print(f"heads: largest disagreement of the current default with Polygraphy: {100 * worst:.1f} % "
          f"(goal: within 5 %)")
    consistent = tails()
    print(f"tails: every tail at most the whole model's time (5 % slack): {'yes' if consistent else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
