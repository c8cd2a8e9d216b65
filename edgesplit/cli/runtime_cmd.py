"""`edgesplit profile`, `edgesplit emit`, `edgesplit bundle pack|unpack`."""

from __future__ import annotations

import argparse

from edgesplit.cli.common import input_shape, int_list, positive_int, print_table

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
    g.add_argument("--backend", default="ort", choices=("ort", "ort-cuda", "ort-trt", "tensorrt", "torch",
                                                         "torch-cuda"),
                   help="runtime that runs the head (see the backends above)")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="intra-op threads (default: the backend's)")
    g.add_argument("--device", default="local", metavar="URL",
                   help="local (default) or ssh://user@host[:port]")
    g.add_argument("--ssh-identity", default=None, metavar="FILE",
                   help="private key for --device ssh:// (default: ssh's own keys and agent)")
    g.add_argument("--ssh-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra ssh -o option, repeatable, e.g. StrictHostKeyChecking=accept-new "
                        "(default: none)")
    g.add_argument("--remote-python", default="python3", metavar="PATH",
                   help="python with edgesplit installed on the device")
    g.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="for --backend torch/torch-cuda: the checkpoint the bundle was exported from "
                        "(default: none: the bundle's seeded random weights; needed when it came from one)")


def _verify_key_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verify-key", default=None, metavar="FILE",
                   help="secret key file: refuse the bundle unless it carries a signature made with this key "
                        "(see 'edgesplit export --sign-key'); default: no signature check")


def _bundle_for_running(args):
    """The bundle, verified (hashes, manifest against graph) and, with --verify-key, its signature checked."""
    from edgesplit.export.bundle import load_bundle
    from edgesplit.export.signing import read_key

    return load_bundle(args.bundle, key=read_key(args.verify_key) if args.verify_key else None)


def register(sub, bundle_sub=None) -> None:
    p = sub.add_parser("profile", help="measure latency and memory of a bundle on this device or over ssh",
                       description=PROFILE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder from 'edgesplit export'")
    p.add_argument("--batch", type=int_list, default=[1], metavar="N[,N...]",
                   help="comma-separated batch sizes (default 1)")
    p.add_argument("--warmup", type=int, default=20, metavar="N", help="untimed calls before timing")
    p.add_argument("--iters", type=int, default=200, metavar="N", help="at least this many timed calls")
    p.add_argument("--min-seconds", type=float, default=2.0, metavar="SECONDS",
                   help="and at least this many seconds of timed calls")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="append the rows to this JSON-lines file (default: print only)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _device_arguments(p)
    _verify_key_argument(p)
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("emit", help="save the exact features a bundle sends for a data split",
                       description=EMIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--data", default="digits", metavar="NAME",
                   help="data set ('edgesplit datasets') whose images are run")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="folder with a local copy of the data set (default: none; digits and faces are "
                        "embedded and need none)")
    p.add_argument("--split", default="attack", choices=("train", "test", "attack"),
                   help="which split's images: attack, the attacker's own; test, the audit's "
                        "held-out images")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="only the first N images of the split (default: all)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the train/test/attack split: the one the model was trained with keeps "
                        "the attack split out of its training data")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="images per head call")
    p.add_argument("--out", required=True, help="FeatureFile to write (a new .npz file)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _device_arguments(p)
    _verify_key_argument(p)
    p.set_defaults(func=cmd_emit)


ESTIMATE_HELP = """\
Estimate head latency per cut on a board you do not have, from the head's MACs and bytes moved and
the board's published peak compute and memory bandwidth (a roofline with an efficiency factor).
These are ESTIMATES, labelled kind=estimate, and are never written into a file of measurements.
'edgesplit devices' lists the boards and where their figures come from.

examples:
  edgesplit estimate resnet18 --input 3x224x224 --device-profile jetson-orin-nano-8gb
  edgesplit estimate mobilenet_v3_small --input 3x224x224 --device-profile raspberry-pi-5-8gb --precision int8
"""


def register_estimate(sub) -> None:
    p = sub.add_parser("estimate", help="roofline latency estimates per cut for a board not at hand",
                       description=ESTIMATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--input", type=input_shape, default=None, metavar="CxHxW",
                   help="input shape per sample (default: the checkpoint's, else 3x224x224)")
    p.add_argument("--device-profile", required=True, metavar="NAME",
                   help="a profile from 'edgesplit devices'")
    p.add_argument("--precision", default="fp32,fp16,int8", metavar="LIST",
                   help="comma-separated precisions: any of fp32, fp16, int8")
    p.add_argument("--efficiency", type=float, default=0.5, metavar="FRACTION",
                   help="fraction of the published peaks assumed reachable, in (0, 1]")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="a checkpoint from 'edgesplit train' (its shape is the default)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="append rows (kind=estimate) to this JSON-lines file (default: print only)")
    p.set_defaults(func=cmd_estimate)


def _estimate_input(args) -> tuple[int, int, int]:
    """--input as given; else the checkpoint's own shape; else 3x224x224 (an explicit one that disagrees with
    the checkpoint is refused when the model is built)."""
    if args.input is not None:
        return args.input
    if args.checkpoint is not None:
        from edgesplit.models.checkpoint import checkpoint_input_shape

        return checkpoint_input_shape(args.checkpoint) or (3, 224, 224)
    return 3, 224, 224


def cmd_estimate(args) -> int:
    from edgesplit.runtime.estimates import estimate_cuts
    from edgesplit.runtime.results import append_row

    args.input = _estimate_input(args)
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    rows = estimate_cuts(args.model, args.input, args.device_profile, precisions, args.checkpoint, args.efficiency)
    for row in rows:
        if args.out:
            append_row(args.out, row)
    c, h, w = args.input
    print(f"ESTIMATE (roofline from published peaks at {args.efficiency:.0%} efficiency; not a measurement): "
          f"{args.model} at {c}x{h}x{w} on {args.device_profile}")
    print_table(["cut", "precision", "est. ms", "bound", "compute ms", "memory ms", "payload B"],
                [(r["cut"], r["precision"], f"{r['seconds'] * 1e3:.3f}", r["bound"], f"{r['compute_s'] * 1e3:.3f}",
                  f"{r['memory_s'] * 1e3:.3f}", r["payload_bytes_per_sample"]) for r in rows])
    return 0


def register_bundle_actions(bsub) -> None:
    p = bsub.add_parser("pack", help="one .tar.gz of a verified bundle, for copying to a board",
                        description="Verify BUNDLE and write it as one archive (unpack it on the board with "
                                    "'edgesplit bundle unpack' or let profile/emit --device do it).")
    p.add_argument("bundle")
    p.add_argument("--out", required=True, help="archive path (.tar.gz)")
    p.add_argument("--sign-key", default=None, metavar="FILE",
                   help="secret key file: put an HMAC-SHA256 signature.json made with it into the archive "
                        "(default: the bundle's own signature.json, if it has one)")
    p.set_defaults(func=cmd_pack)
    p = bsub.add_parser("unpack", help="extract a packed bundle safely and verify it",
                        description="Extract ARCHIVE into --out, refusing absolute paths, '..' and links, "
                                    "then verify every hash.")
    p.add_argument("archive")
    p.add_argument("--out", required=True, help="bundle folder to create")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    p.add_argument("--verify-key", default=None, metavar="FILE",
                   help="secret key file: refuse the archive unless its bundle is signed with this key "
                        "(default: hashes only, no signature check)")
    p.set_defaults(func=cmd_unpack)
    p = bsub.add_parser("engine", help="on the board: build a TensorRT engine for this GPU into the bundle",
                        description="Build a TensorRT engine from BUNDLE's head.onnx on this machine's GPU and add "
                                    "it to the bundle (manifest re-signed). Engines only run on the GPU and "
                                    "TensorRT version that built them, so export ONNX on the host, copy the "
                                    "bundle to the Jetson, and run this there. INT8 bundles must be exported "
                                    "with --target tensorrt (symmetric Q/DQ). Needs the 'trt' extra.")
    p.add_argument("bundle")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"),
                   help="builder precision; default: the bundle's (required for an imported --head)")
    p.add_argument("--max-batch", type=int, default=32, metavar="N",
                   help="largest batch of the optimisation profile")
    p.add_argument("--workspace-mb", type=int, default=1024, metavar="MIB",
                   help="TensorRT builder workspace in MiB")
    p.set_defaults(func=cmd_engine)


def cmd_engine(args) -> int:
    from edgesplit.export.tensorrt_build import add_engine

    bundle = add_engine(args.bundle, precision=args.precision, max_batch=args.max_batch,
                        workspace_mb=args.workspace_mb)
    for name, r in bundle.engines().items():
        print(f"{bundle.path}: engine {name}: TensorRT {r['tensorrt_version']} on {r['gpu']} "
              f"(sm {r['compute_capability']}, {r['precision']}, batch {r['profile']['min_batch']}-"
              f"{r['profile']['max_batch']})")
    return 0


def _remote(args):
    from edgesplit.devices.remote import SshDevice, parse_device

    return SshDevice(parse_device(args.device), python=args.remote_python, identity=args.ssh_identity,
                     options=tuple(args.ssh_option))


def cmd_profile(args) -> int:
    from edgesplit.progress import TqdmProgress
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
                              progress=TqdmProgress(disable=args.quiet), on_row=keep)
    else:
        from edgesplit.runtime.remote_jobs import profile_remote

        rows = profile_remote(_remote(args), bundle, args.backend, args.batch, timing, args.threads)
        for row in rows:
            keep(row)
    if args.json:
        from edgesplit.cli.common import print_json

        print_json(rows)
        return 0
    table = []
    for r in rows:
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
    if args.out:
        print(f"appended {len(rows)} row(s) to {args.out}")
    return 0


def cmd_emit(args) -> int:
    from edgesplit.progress import TqdmProgress
    from edgesplit.runtime.featurefile import check_feature_path

    check_feature_path(args.out, args.force)  # before any work: never overwrite a file by mistake
    bundle = _bundle_for_running(args)
    if args.device == "local":
        from edgesplit.runtime.emit import emit_split

        ff = emit_split(bundle, args.data, args.split, args.limit, args.data_root, args.seed, args.backend,
                        args.batch_size, args.threads, args.checkpoint, progress=TqdmProgress(disable=args.quiet))
        ff.save(args.out)
    else:
        from edgesplit.runtime.emit import split_inputs
        from edgesplit.runtime.remote_jobs import emit_remote

        images, ids, data = split_inputs(bundle, args.data, args.split, args.limit, args.data_root, args.seed)
        ff = emit_remote(_remote(args), bundle.path, images, ids, data, args.out, args.backend, args.batch_size,
                         args.threads)
    wire = ff.wire
    print(f"wrote {args.out}: {len(ff.ids)} samples of {args.data}/{args.split}, features "
          f"{ff.features.dtype} {tuple(ff.features.shape[1:])} ({ff.features.nbytes} bytes on the wire"
          + (f", scale {wire.scale:.6g}, zero-point {wire.zero_point}" if wire.format == "int8" else "") + ")")
    return 0


def cmd_pack(args) -> int:
    from edgesplit.export.signing import key_id, read_key
    from edgesplit.runtime.pack import pack_bundle

    key = read_key(args.sign_key) if args.sign_key else None
    path = pack_bundle(args.bundle, args.out, sign_key=key)
    print(f"wrote {path} ({path.stat().st_size} bytes" + (f", signed with key {key_id(key)})" if key else ")"))
    return 0


def cmd_unpack(args) -> int:
    from edgesplit.export.signing import read_key
    from edgesplit.runtime.pack import unpack_bundle

    key = read_key(args.verify_key) if args.verify_key else None
    path = unpack_bundle(args.archive, args.out, force=args.force, key=key)
    print(f"unpacked and verified {path}")
    return 0
