"""Do the sweep's timing rows agree with a peer, and are its server tails consistent with the whole model?
(issue 13, item 15)

    python benchmarks/sweep_timing.py [--repeats 3] [--threads 1]

Heads: classifier4 at 1x32x32 (the demo's model, random-init, seeded), every block cut at FP32 and INT8,
exported once. Each head is timed by `edgesplit.runtime.profile.profile_bundle` (what a sweep's profile step
runs) with the profile settings of the old sweep default (warm-up 10, 50 calls, 0.5 s) and of the current
`TimingSpec` default, and by two peers on their own sessions (same thread count): a bare
`InferenceSession.run` around `time.perf_counter` and Polygraphy's OnnxrtRunner, `--repeats` times in
alternation; printed: each setting's p50 over the bare peer's median (worst and spread over the repeats), and
the current setting over Polygraphy's (whose own per-call bookkeeping weighs on heads of a few microseconds).

Tails: `edgesplit.bench.tail_timing.time_tail` for the whole model and every cut's tail, once in a fresh process
state and once after a torch head was profiled with one thread (what a sweep with a torch backend did before
the tails were timed): every tail must be faster than the whole model. Prints the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, ort_session  # noqa: E402

OLD = {"warmup": 10, "iters": 50, "min_seconds": 0.5}


def peer_p50(bundle, threads: int, seconds: float) -> tuple[float, float]:
    """Median ms of Polygraphy's OnnxrtRunner and of a bare `InferenceSession.run` around a perf_counter, each
    timed for at least `seconds` (as long as our profile) after 20 warm-up calls."""
    from polygraphy.backend.onnxrt import OnnxrtRunner

    x = np.random.default_rng(0).random((1, *bundle.input["shape"][1:]), dtype=np.float32)
    with OnnxrtRunner(ort_session(bundle.onnx_path, threads)) as peer:
        poly = _timed(lambda: peer.infer({"input": x}), seconds, peer.last_inference_time)
    session = ort_session(bundle.onnx_path, threads)
    return poly, _timed(lambda: session.run(None, {"input": x}), seconds)


def _timed(call, seconds: float, last=None) -> float:
    for _ in range(20):
        call()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 200:
        t0 = time.perf_counter()
        call()
        times.append(last() if last else time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def ours_p50(bundle, threads: int, setting: dict) -> float:
    from edgesplit.runtime.profile import profile_bundle
    from edgesplit.runtime.timing import TimingConfig

    rows = profile_bundle(bundle.path, "ort", (1,), TimingConfig(**setting), threads)
    return rows[0]["latency_ms"]["p50"]


def heads(tmp: Path, threads: int, repeats: int) -> float:
    """Each of our profiles is bracketed by the peers (peer, ours, peer): the VM's drift over a few seconds
    (20 % seen here) hits both sides alike, and ours is compared with the mean of the two brackets."""
    from edgesplit.bench.spec import TimingSpec
    from edgesplit.export import ExportConfig, export_bundle

    spec = TimingSpec()
    new = {"warmup": spec.warmup, "iters": spec.iters, "min_seconds": spec.min_seconds}
    print(f"old sweep default {OLD}; current default {new}; {threads} thread(s); {repeats} repeats each, "
          f"every profile bracketed by the peers")
    print(f"{'cut':<12}{'prec':<6}{'bare ort ms':>12}{'old/bare worst':>16}{'new/bare worst':>16}"
          f"{'new/polygraphy':>16}")
    worst_new = 0.0
    for cut in ("features.0", "features.1", "features.2", "features.3", "fc.1"):
        for precision in ("fp32", "int8"):
            bundle = export_bundle(ExportConfig("classifier4", cut, precision, input_shape=(1, 32, 32),
                                                calib_size=64, eval_size=16), tmp / f"{cut}-{precision}")
            ratios = {"old": [], "new": [], "poly": []}
            for _ in range(repeats):
                for name, setting in (("old", OLD), ("new", new)):
                    poly1, bare1 = peer_p50(bundle, threads, setting["min_seconds"])
                    ours = ours_p50(bundle, threads, setting)
                    poly2, bare2 = peer_p50(bundle, threads, setting["min_seconds"])
                    ratios[name].append(ours / ((bare1 + bare2) / 2))
                    if name == "new":
                        ratios["poly"].append(ours / ((poly1 + poly2) / 2))
            cells = [f"{max(ratios[n], key=lambda v: abs(v - 1)):>16.3f}" for n in ("old", "new", "poly")]
            worst_new = max(worst_new, max(abs(v - 1) for v in ratios["new"]))
            print(f"{cut:<12}{precision:<6}{(bare1 + bare2) / 2:>12.4f}{''.join(cells)}")
    return worst_new


def tails() -> bool:
    """Every tail against the whole model, bracketed (whole, tail, whole); and the old behaviour emulated: a
    tail timed after a torch head had set one thread, as the sweep did before the threads were fixed."""
    import torch

    from edgesplit.bench.spec import TimingSpec
    from edgesplit.bench.tail_timing import server_threads, time_tail
    from edgesplit.models import create_model, split
    from edgesplit.models.cuts import analyse
    from edgesplit.runners.pytorch import ModuleRunner
    from edgesplit.runtime.timing import TimingConfig, time_runner

    ok, spec = True, TimingSpec()
    for name, shape in (("classifier4", (1, 32, 32)), ("resnet18", (3, 64, 64))):
        torch.manual_seed(0)
        model = create_model(name, img_size=shape[1], in_chans=shape[0], num_classes=10).eval()
        cuts = analyse(model, torch.zeros(1, *shape)).blocks[:4]
        cells = []
        for cut in cuts:
            w1 = time_tail(model, None, shape, spec)["tail_ms"]
            t = time_tail(model, cut, shape, spec)["tail_ms"]
            w2 = time_tail(model, None, shape, spec)["tail_ms"]
            ratio = t / ((w1 + w2) / 2)
            ok &= ratio <= 1.05
            cells.append(f"{cut.name} {t:.3f} ({ratio:.2f}x whole)")
        torch.set_num_threads(1)  # what a torch head profiled with one thread left behind
        x = np.random.default_rng(0).random((1, *cuts[0].shape), dtype=np.float32)
        timing = TimingConfig(warmup=spec.warmup, iters=spec.iters, min_seconds=spec.min_seconds)
        old = statistics.median(time_runner(ModuleRunner(split(model, cuts[0].name).tail), x, timing)) * 1e3
        torch.set_num_threads(server_threads())
        whole = time_tail(model, None, shape, spec)["tail_ms"]
        print(f"{name} {'x'.join(map(str, shape))} ({server_threads()} threads): whole ~{(w1 + w2) / 2:.3f} ms; "
              + ", ".join(cells) + f"; old behaviour, {cuts[0].name} tail on 1 thread: {old:.3f} ms "
              f"({old / whole:.2f}x whole)")
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="head threads (the sweep's [profile] threads)")
    args = p.parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        worst = heads(Path(tmp), args.threads, args.repeats)
    print(f"heads: largest disagreement of the current default with bare onnxruntime: {100 * worst:.1f} % "
          f"(goal: within 5 %)")
    consistent = tails()
    print(f"tails: every tail at most the whole model's time (5 % slack): {'yes' if consistent else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
