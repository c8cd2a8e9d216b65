"""Does edgesplit's torch-cuda timing agree with torch.utils.benchmark, eager and as a CUDA graph, samplers on?

    python benchmarks/gpu_latency.py [--quick] [--size 224] [--cuts maxpool,layer2.1] [--min-seconds 1]

For resnet18 block cuts at 224x224, fp32 and fp16, batch 1 and 16, in one process, per head:
  - edgesplit's torch-cuda row (`profile_bundle`, the code `edgesplit profile --backend torch-cuda` runs):
    eager (--no-cuda-graph) and graph (--cuda-graph), each with the samplers on (RSS, and NVML where present,
    sampled between timed windows) and off; and eager with the old way, an NVML and an RSS thread polling every
    10 / 5 ms beside the timed loop (the 'thread' column: what issue 16 measured);
  - torch.utils.benchmark on the same head (same weights, its own copy on the GPU): `Timer.blocked_autorange`
    median of `head(x)` under no_grad, and of `graph.replay()` for a graph captured the way PyTorch's
    documentation does it.
Prints each p50 / median in ms and the ratios: ours/peer in the same mode with samplers on (goal: within 5 %),
samplers on/off (goal: within 5 %), and eager/graph. Without a CUDA GPU it prints "no GPU" and exits 0.

The bundles are manifests only (no ONNX export, which would take minutes at 224 px): the torch-cuda runner
rebuilds the head from the manifest's model spec and cut (seeded init), exactly as for an exported bundle.
Eager figures of launch-bound heads move by tens of per cent from one run to the next (the CPU's launch path,
the GPU's clocks): every column is measured in interleaved rounds (a mode's columns back to back, the order
rotating), each ratio taken within a round and its median over the rounds printed with its spread (max - min):
a wide spread says the ratio is not yet stable (pass more --rounds).
--quick: 3 cuts (maxpool, layer2.1, layer4.1), 3 rounds of >= 0.1 s and 100 calls (ours) a figure; about two
minutes on an H200.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

QUICK_CUTS = ("maxpool", "layer2.1", "layer4.1")


def manifest_bundle(folder: Path, model: str, cut: str, precision: str, size: int):
    """A bundle of the resnet18 head up to `cut` whose manifest is all the torch-cuda runner reads."""
    import numpy as np

    from edgesplit.export.bundle import Bundle
    from edgesplit.models import analyse, create_model, default_input

    net = create_model(model, img_size=size, seed=0)
    point = analyse(net, default_input(net)).resolve(cut)
    dtype = {"fp32": "float32", "fp16": "float16"}[precision]
    shape = list(point.shape)
    manifest = {
        "model": {"name": model, "spec": net.edgesplit_spec.to_dict(), "checkpoint": None, "checkpoint_sha256": None},
        "cut": point.to_dict(), "precision": precision, "export": {"seed": 0},
        "input": {"name": "input", "shape": ["batch", 3, size, size], "dtype": dtype},
        "output": {"name": "features", "shape": ["batch", *shape], "dtype": dtype},
        "wire": {"format": precision, "dtype": dtype, "bytes_per_sample": int(np.prod(shape)) * (4 if dtype ==
                                                                                                  "float32" else 2)},
    }
    path = folder / f"{model}-{cut}-{precision}"
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps(manifest))
    return Bundle(path, manifest)


def ours(bundle, batch: int, graph: bool, samplers: str, min_seconds: float, iters: int) -> tuple[float, dict]:
    """edgesplit's p50 (ms) and its row: samplers "on" (between windows), "off", or "thread" (the old way)."""
    import contextlib

    from edgesplit.devices import NvmlSampler, RssSampler
    from edgesplit.runtime.profile import profile_bundle
    from edgesplit.runtime.timing import TimingConfig

    timing = TimingConfig(warmup=20, iters=iters, min_seconds=min_seconds)
    with contextlib.ExitStack() as stack:
        if samplers == "thread":  # what profile did before issue 16: threads polling beside the timed loop
            stack.enter_context(RssSampler(interval_s=0.005, background=True))
            if NvmlSampler.available():
                stack.enter_context(NvmlSampler(interval_s=0.01, background=True))
        # graph: the default (captured where it can be, else eager with the reason), so one head that cannot be
        # captured is labelled "(graph fell back)" rather than ending the run
        (row,) = profile_bundle(bundle, "torch-cuda", [batch], timing, cuda_graph=None if graph else False,
                                samplers=samplers == "on")
    return row["latency_ms"]["p50"], row


def peer(bundle, batch: int, graph: bool, min_seconds: float) -> float:
    """torch.utils.benchmark's median (ms) on the same head: eager calls, or replays of a captured graph."""
    import torch
    import torch.utils.benchmark as benchmark

    from edgesplit.runners.pytorch import reference_split

    dtype = torch.float16 if bundle.manifest["precision"] == "fp16" else torch.float32
    head = reference_split(bundle).head.eval().cuda().to(dtype)
    x = torch.rand(batch, *bundle.input["shape"][1:], device="cuda").to(dtype)
    with torch.no_grad():
        if not graph:
            timer = benchmark.Timer("head(x)", globals={"head": head, "x": x})
            return timer.blocked_autorange(min_run_time=min_seconds).median * 1e3
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                head(x)
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            head(x)
        timer = benchmark.Timer("g.replay()", globals={"g": g})
        return timer.blocked_autorange(min_run_time=min_seconds).median * 1e3


def gpu_line(row: dict) -> str:
    gpu = row.get("gpu") or {}
    clocks = gpu.get("clocks") or {}
    return (f"GPU {gpu.get('name')} (cc {gpu.get('compute_capability')}), driver {gpu.get('driver')}, "
            f"CUDA {gpu.get('cuda')} (driver's {gpu.get('cuda_driver')}), cuDNN {gpu.get('cudnn')}, "
            f"torch {gpu.get('torch')}, clocks {json.dumps(clocks)}")


HEADER = (f"{'cut':<10}{'prec':<6}{'batch':>6}{'eager ours':>11}{'peer':>9}{'ratio':>7}{'spread':>7}{'off':>9}"
          f"{'on/off':>7}{'thread':>9}{'thr/peer':>9}{'graph ours':>11}{'peer':>9}{'ratio':>7}{'spread':>7}"
          f"{'off':>9}{'on/off':>7}{'eager/graph':>12}")


def row_line(r: dict) -> str:
    eo, ep, eoff, eth = r["ours_eager_on"], r["peer_eager"], r["ours_eager_off"], r["ours_eager_thread"]
    go, gp, goff = r["ours_graph_on"], r["peer_graph"], r["ours_graph_off"]
    return (f"{r['cut']:<10}{r['precision']:<6}{r['batch']:>6}{eo:>11.3f}{ep:>9.3f}{r['eager_on_peer']:>7.3f}"
            f"{r['eager_on_peer_spread']:>7.3f}{eoff:>9.3f}{r['eager_on_off']:>7.3f}{eth:>9.3f}{eth / ep:>9.3f}"
            f"{go:>11.3f}{gp:>9.3f}{r['graph_on_peer']:>7.3f}{r['graph_on_peer_spread']:>7.3f}{goff:>9.3f}"
            f"{r['graph_on_off']:>7.3f}{eo / go:>12.2f}"
            + ("" if r["capture_graph"] == "graph" else "  (graph fell back)"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 cuts, 3 rounds of 0.1 s / 100 calls (about 2 minutes on an H200)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--cuts", default=None, help="comma-separated cuts (default: every block; --quick: 4)")
    p.add_argument("--min-seconds", type=float, default=None,
                   help="seconds a figure takes in each round (default 0.5, --quick 0.1)")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds; each column's median is kept (default 5, --quick 3)")
    args = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("no GPU: torch sees no CUDA device here, so there is nothing to measure (run this on a CUDA machine)")
        return 0
    from edgesplit.models import analyse, create_model, default_input

    if args.cuts:
        cuts = [c.strip() for c in args.cuts.split(",") if c.strip()]
    elif args.quick:
        cuts = list(QUICK_CUTS)
    else:
        net = create_model("resnet18", img_size=args.size)
        cuts = [c.name for c in analyse(net, default_input(net)).blocks]
    seconds = args.min_seconds or (0.1 if args.quick else 0.5)
    iters = 100 if args.quick else 200
    rounds = args.rounds or (3 if args.quick else 5)
    groups = [[("peer", "eager"), ("on", "eager"), ("off", "eager"), ("thread", "eager")],
              [("peer", "graph"), ("on", "graph"), ("off", "graph")]]
    columns = [c for g in groups for c in g]
    results, first_row, started = [], None, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for cut in cuts:
            for precision in ("fp32", "fp16"):
                bundle = manifest_bundle(Path(tmp), "resnet18", cut, precision, args.size)
                for batch in (1, 16):
                    r = {"cut": cut, "precision": precision, "batch": batch}
                    figures: dict = {c: [] for c in columns}
                    # Interleaved rounds: a mode's figures (peer, ours on/off/thread) back to back, their order
                    # rotating each round and the modes alternating, so drift hits every column alike; each ratio
                    # is taken within a round (figures seconds apart) and its median over rounds kept.
                    for i in range(rounds):
                        order = [g[i % len(g):] + g[:i % len(g)] for g in (groups if i % 2 == 0 else groups[::-1])]
                        for who, mode in (c for g in order for c in g):
                            if who == "peer":
                                figures[(who, mode)].append(peer(bundle, batch, mode == "graph", seconds))
                                continue
                            p50, row = ours(bundle, batch, mode == "graph", who, seconds, iters)
                            figures[(who, mode)].append(p50)
                            first_row = first_row or row
                            if who == "on":
                                r[f"capture_{mode}"] = row["gpu"]["capture"]["mode"]
                    for (who, mode), values in figures.items():
                        r[f"peer_{mode}" if who == "peer" else f"ours_{mode}_{who}"] = statistics.median(values)
                    for mode in ("eager", "graph"):
                        on = figures[("on", mode)]
                        per_round = {"peer": [a / b for a, b in zip(on, figures[("peer", mode)], strict=True)],
                                     "off": [a / b for a, b in zip(on, figures[("off", mode)], strict=True)]}
                        for vs, ratios in per_round.items():
                            r[f"{mode}_on_{vs}"] = statistics.median(ratios)
                            r[f"{mode}_on_{vs}_spread"] = max(ratios) - min(ratios)
                    if not results:  # the table starts with the first row: a run cut off still shows its rows
                        print(gpu_line(first_row))
                        print(HEADER, flush=True)
                    results.append(r)
                    print(row_line(r), flush=True)
                    torch.cuda.empty_cache()
    print(f"machine: {machine()}")
    print(f"resnet18 heads at 3x{args.size}x{args.size}; samplers on = {first_row['settings']['samplers']}; "
          f"each figure the median over {rounds} interleaved rounds of the p50 (ours) or the blocked_autorange "
          f"median (peer) of >= {seconds} s; ratio and on/off: medians of the ratios within each round, 'spread' "
          f"their max - min over the rounds; {time.perf_counter() - started:.0f} s in all")

    def worst(key: str) -> float:
        return max(abs(r[key] - 1) for r in results)

    def widest(key: str) -> float:
        return max(r[f"{key}_spread"] for r in results)

    print(f"ours vs peer, samplers on: eager within {100 * worst('eager_on_peer'):.1f} %, "
          f"graph within {100 * worst('graph_on_peer'):.1f} % (goal 5 %); widest spread over rounds: eager "
          f"{widest('eager_on_peer'):.3f}, graph {widest('graph_on_peer'):.3f} (wide: more --rounds)")
    print(f"samplers on vs off: eager within {100 * worst('eager_on_off'):.1f} %, "
          f"graph within {100 * worst('graph_on_off'):.1f} % (goal 5 %)")
    print(f"old sampler threads vs peer, eager: median ratio "
          f"{statistics.median(r['ours_eager_thread'] / r['peer_eager'] for r in results):.3f}")
    print(f"eager/graph speed-up, ours: median {statistics.median(r['ours_eager_on'] / r['ours_graph_on'] for r in results):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
