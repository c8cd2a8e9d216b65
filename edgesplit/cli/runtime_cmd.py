"""`edgesplit profile` and `edgesplit emit`: run a bundle on this device or on a board over ssh."""

from __future__ import annotations

import argparse

from edgesplit.cli.arguments import (
    DATA_ROOT_HELP,
    add_board,
    add_json,
    add_key_file,
    add_limit,
    add_out,
    add_quiet,
    add_seed,
    board,
    int_list,
    positive_int,
    progress,
)
from edgesplit.cli.common import print_json, print_table
from edgesplit.runners import BACKENDS

PROFILE_HELP = """\
Measure a bundle on this device (or on a board over ssh): latency percentiles per batch size,
throughput, load time, peak memory above a no-model baseline (process RSS; GPU memory via NVML
and Jetson memory via tegrastats where present), payload bytes per sample, and the environment.
The bundle's hashes are verified first. Each row is appended to --out as soon as it is measured.

backends: ort (onnxruntime CPU), ort-cuda, ort-trt (onnxruntime CUDA / TensorRT providers),
          tensorrt (native engine from the bundle), torch, torch-cuda (PyTorch reference)

examples:
  edgesplit profile bundles/r18-int8 --batch 1,8 --out results.jsonl
  edgesplit profile bundles/r18-fp32 --threads 1 --iters 500 --min-seconds 5
  edgesplit profile bundles/r18-int8 --device ssh://nvidia@orin.local --backend ort-trt
  edgesplit profile bundles/r18-fp16 --backend torch-cuda --batch 1,16 --no-cuda-graph

Memory and power are sampled between timed windows only (no sampler thread runs beside a timed call).
GPU rows record the GPU, driver, CUDA, cuDNN and torch versions, clocks, and the capture mode (graph or
eager, and why).
"""

EMIT_HELP = """\
Run a bundle over a data split and save exactly what the device sends (the wire bytes: int8 with
scale/zero-point for an int8 wire) with the sample ids, the bundle's sha256, the backend and the
device. This FeatureFile is what the privacy audit attacks.

examples:
  edgesplit emit bundles/c4-int8 --data digits --split attack --out feats/attack.npz
  edgesplit emit bundles/c4-int8 --data digits --split test --limit 200 --out feats/test.npz
  edgesplit emit bundles/c4-int8 --data digits --split attack --device ssh://pi@raspberrypi --out f.npz
"""


def _device_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("where to run")
    g.add_argument("--backend", default="ort", choices=BACKENDS,
                   help="runtime that runs the head (see the backends above)")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="intra-op threads (default: the backend's)")
    add_board(g, help="local (default) or ssh://user@host[:port]")
    g.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="for --backend torch/torch-cuda: the checkpoint the bundle was exported from "
                        "(default: none: the bundle's seeded random weights; needed when it came from one)")


def _verify_key_argument(p: argparse.ArgumentParser) -> None:
    add_key_file(p, "--verify-key", help="secret key file: refuse the bundle unless it carries a signature made with "
                                         "this key (see 'edgesplit export --sign-key'); default: no signature check")


def _bundle_for_running(args):
    """The bundle, verified (hashes, manifest against graph) and, with --verify-key, its signature checked."""
    from edgesplit.export.bundle import load_bundle
    from edgesplit.export.signing import read_key

    return load_bundle(args.bundle, key=read_key(args.verify_key) if args.verify_key else None)


def register(sub) -> None:
    p = sub.add_parser("profile", help="measure latency and memory of a bundle on this device or over ssh",
                       description=PROFILE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder from 'edgesplit export'")
    p.add_argument("--batch", type=int_list, default=[1], metavar="N[,N...]",
                   help="comma-separated batch sizes (default 1)")
    p.add_argument("--warmup", type=int, default=20, metavar="N", help="untimed calls before timing")
    p.add_argument("--iters", type=int, default=200, metavar="N", help="at least this many timed calls")
    p.add_argument("--min-seconds", type=float, default=2.0, metavar="SECONDS",
                   help="and at least this many seconds of timed calls")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="--backend torch-cuda: replay the head as a CUDA graph captured once per batch size "
                        "(--cuda-graph: graphs or an error; --no-cuda-graph: eager calls; default: graphs where "
                        "capture works, else eager, the reason recorded in the row)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="append the rows to this JSON-lines file (default: print only)")
    add_json(p, help="print the rows as JSON")
    add_quiet(p)
    _device_arguments(p)
    _verify_key_argument(p)
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("emit", help="save the exact features a bundle sends for a data split",
                       description=EMIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--data", default="digits", metavar="NAME",
                   help="data set ('edgesplit datasets') whose images are run")
    p.add_argument("--data-root", default=None, metavar="DIR", help=DATA_ROOT_HELP)
    p.add_argument("--split", default="attack", choices=("train", "test", "attack"),
                   help="which split's images: attack, the attacker's own; test, the audit's "
                        "held-out images")
    add_limit(p, "--limit", help="only the first N images of the split (default: all)")
    add_seed(p, help="seed of the train/test/attack split: the one the model was trained with keeps "
                     "the attack split out of its training data")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="images per head call")
    add_out(p, help="FeatureFile to write (a new .npz file)", force="replace an existing --out file")
    add_quiet(p)
    _device_arguments(p)
    _verify_key_argument(p)
    p.set_defaults(func=cmd_emit)


def cmd_profile(args) -> int:
    from edgesplit.runtime.results import append_row
    from edgesplit.runtime.timing import TimingConfig

    timing = TimingConfig(warmup=args.warmup, iters=args.iters, min_seconds=args.min_seconds)

    def keep(row):
        if args.out:
            append_row(args.out, row)

    bundle = _bundle_for_running(args)
    if args.device == "local":
        from edgesplit.runtime.profile import profile_bundle

        rows = profile_bundle(bundle, args.backend, args.batch, timing, args.threads, args.checkpoint,
                              progress=progress(args), on_row=keep, cuda_graph=args.cuda_graph)
    else:
        from edgesplit.runtime.remote_jobs import profile_remote

        rows = profile_remote(board(args), bundle, args.backend, args.batch, timing, args.threads,
                              cuda_graph=args.cuda_graph)
        for row in rows:
            keep(row)
    if args.json:
        print_json(rows)
        return 0
    table, captures = [], []
    for r in rows:
        capture = r.get("gpu", {}).get("capture") or {}
        if capture.get("mode") in ("graph", "eager"):
            captures.append(f"batch {r['batch']}: {capture['mode']}"
                            + (f" ({capture['reason']})" if capture.get("reason") else ""))
        lat, mem = r["latency_ms"], r["memory"]
        peak = mem.get("rss_peak_above_baseline_bytes")
        table.append((r["backend"], r["batch"], f"{lat['mean']:.3f}", f"{lat['p50']:.3f}", f"{lat['p90']:.3f}",
                      f"{lat['p99']:.3f}", f"{lat['std']:.3f}", f"{r['throughput_per_s']:.1f}",
                      f"{r['load_seconds']:.3f}", f"{peak / 2**20:.1f}" if peak is not None else "-",
                      r["payload_bytes_per_sample"]))
    first = rows[0]
    print(f"{first['bundle']}: {first['model']} up to {first['cut']} at {first['precision']} "
          f"({first['environment']['cpu']}, {first['environment']['cores']} cores"
          + (f", {first['device_url']}" if "device_url" in first else "") + ")")
    print_table(["backend", "batch", "mean ms", "p50 ms", "p90 ms", "p99 ms", "std ms", "samples/s", "load s",
                 "peak RSS MB", "payload B/sample"], table)
    gpu = first.get("gpu")
    if gpu:
        print(f"GPU {gpu.get('name')}, driver {gpu.get('driver')}, CUDA {gpu.get('cuda')}, cuDNN {gpu.get('cudnn')}, "
              f"torch {gpu.get('torch')}; capture: " + ("; ".join(captures) or gpu["capture"]["mode"]))
    if args.out:
        print(f"appended {len(rows)} row(s) to {args.out}")
    return 0


def cmd_emit(args) -> int:
    from edgesplit.runtime.featurefile import check_feature_path

    check_feature_path(args.out, args.force)  # before any work: never overwrite a file by mistake
    bundle = _bundle_for_running(args)
    if args.device == "local":
        from edgesplit.runtime.emit import emit_split

        ff = emit_split(bundle, args.data, args.split, args.limit, args.data_root, args.seed, args.backend,
                        args.batch_size, args.threads, args.checkpoint, progress=progress(args))
        ff.save(args.out)
    else:
        from edgesplit.runtime.emit import split_inputs
        from edgesplit.runtime.remote_jobs import emit_remote

        images, ids, data = split_inputs(bundle, args.data, args.split, args.limit, args.data_root, args.seed)
        ff = emit_remote(board(args), bundle.path, images, ids, data, args.out, args.backend, args.batch_size,
                         args.threads)
    wire = ff.wire
    print(f"wrote {args.out}: {len(ff.ids)} samples of {args.data}/{args.split}, features "
          f"{ff.features.dtype} {tuple(ff.features.shape[1:])} ({ff.features.nbytes} bytes on the wire"
          + (f", scale {wire.scale:.6g}, zero-point {wire.zero_point}" if wire.format == "int8" else "") + ")")
    return 0
