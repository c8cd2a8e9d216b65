"""`edgesplit export`: a model's head as a deployable bundle."""

from __future__ import annotations

import argparse

from edgesplit.cli.arguments import (
    add_board,
    add_checkpoint,
    add_data,
    add_input,
    add_key_file,
    add_out,
    add_precision,
    add_quiet,
    add_seed,
    add_wire,
    board,
    progress,
)
from edgesplit.cli.common import print_table

EXPORT_HELP = """\
Export the head of MODEL (everything up to --cut) as a deployable bundle folder:
head.onnx (+ head.<gpu>.engine with --format tensorrt), fidelity.json and manifest.json
(input/output format, wire format with int8 scale/zero-point, calibration, sha256 of every file).

MODEL may be a shipped ONNX file (a path ending in .onnx, external data files beside it): the head
is the file's graph from its image input up to the tensor --cut names ('edgesplit cuts model.onnx'
lists the legal ones), the weights and classes are the file's (no --checkpoint, --num-classes),
--input fixes its dynamic input dims, and the manifest records the file's sha256 and the cut tensor.

precision   fp32 | fp16 (a genuine FP16 graph) | int8 (static QDQ, per-channel weights)
wire        what the device sends: fp32 | fp16 | int8 (1 byte per value + scale/zero-point);
            default = the precision's own
target      INT8 layout: auto (this host) | x86-vnni (U8S8) | x86 (U8S8, 7-bit weights) |
            arm (symmetric S8S8) | tensorrt (symmetric S8S8)
int8 scope  which nodes of an int8 head run in INT8:
            auto  (default) measured on this host, or with --device ssh://user@host on that board
                  (its on-device runner, 'edgesplit profile --device' needs the same): onnxruntime
                  times every node of the FP32 and the all-INT8 head, regions slower in INT8 (their
                  Q/DQ boundaries counted) stay float, and the fastest of all-INT8 / that mix / the
                  FP32 head that keeps the fidelity floor (cosine >= 0.99, top-1 at most 1 point
                  lower) ships. The wire stays int8 either way; the manifest's quantization.scope
                  lists the nodes kept float with their times and the machine measured on
                  (measured_on): the choice holds for that CPU. --target auto takes its layout.
                  A board that cannot be reached stops the export (exit 2).
            all   every quantizable node INT8, measured nowhere (--device is not contacted): the
                  default for --format tensorrt (TensorRT chooses its kernels itself); the way to
                  export for a --target other than the measuring machine's (auto refuses both)

The fidelity check compares the exported head with the PyTorch FP32 head (for an ONNX file: the
FP32 ONNX head cut from it, the tail run by onnxruntime) on the --eval-split (never the calibration
split) and prints max abs error, cosine, SNR and the tail's accuracy.

examples:
  edgesplit export resnet18 --cut layer2.1 --input 3x64x64 --precision int8 --out bundles/r18-l2-int8
  edgesplit export mobilenet_v3_small --cut features.3 --precision int8 --int8-scope all --out bundles/mnv3-all
  edgesplit export mobilenet_v3_small --cut features.3 --precision int8 --device ssh://pi@raspberrypi \
      --out bundles/mnv3-pi
  edgesplit export classifier4 --checkpoint runs/c4/model.pt --cut features.1 --precision int8 \\
      --calib-data digits --calib-method entropy --out bundles/c4-int8
  edgesplit export resnet18 --cut layer2.1 --precision fp16 --format tensorrt --out bundles/r18-trt
  edgesplit export shipped/model.onnx --cut relu_8 --input 3x64x64 --precision int8 --out bundles/shipped-int8
"""


def register(sub) -> None:
    p = sub.add_parser("export", help="export a head as a bundle (ONNX fp32/fp16/int8, TensorRT)",
                       description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="zoo name ('edgesplit models'), or a shipped ONNX file (model.onnx)")
    p.add_argument("--cut", required=True, help="cut name ('edgesplit cuts MODEL'); for an ONNX file a tensor of it")
    add_precision(p, help="the head's arithmetic, see above", default="fp32")
    add_checkpoint(p, help="weights from 'edgesplit train' (default: none: random weights seeded by --seed; an "
                           "ONNX file has its own)")
    add_input(p, help="input shape (default: the checkpoint's, else 3x32x32; an ONNX file's own, this fixes its "
                      "dynamic dims)")
    p.add_argument("--num-classes", type=int, default=None, metavar="N",
                   help="classifier outputs (default: the checkpoint's, else 10)")
    add_wire(p, help="what the device sends (default: the precision's own)")
    p.add_argument("--format", choices=("onnx", "tensorrt"), default="onnx",
                   help="onnx, or tensorrt: also build an engine for this machine's GPU")
    p.add_argument("--target", default="auto", help="INT8 layout (see above; default: auto)")
    p.add_argument("--int8-scope", choices=("auto", "all"), default=None,
                   help="auto: keep float the nodes slower in INT8 on this host or --device (measured); all: every "
                        "node INT8 (see above; default: auto, all for --format tensorrt)")
    add_board(p.add_argument_group("where --int8-scope auto measures"),
              help="local (default: this host) or ssh://user@host[:port], the board the head is exported for")
    g = p.add_argument_group("calibration and evaluation data")
    add_data(g, flag="--calib-data", help="data set ('edgesplit datasets') for INT8 calibration and the fidelity check",
             root_help="folder with a local copy of --calib-data (default: none; digits and faces are "
                       "embedded and need none)")
    g.add_argument("--calib-split", default="train", choices=("train", "test", "attack"),
                   help="split calibrated on, for an int8 head or wire; must differ from --eval-split")
    g.add_argument("--calib-size", type=int, default=256, metavar="N",
                   help="calibration images for an int8 head or wire, 16 to 8192")
    g.add_argument("--calib-method", choices=("minmax", "entropy", "percentile"), default="minmax",
                   help="how INT8 ranges are chosen from the calibration images")
    g.add_argument("--calib-percentile", type=float, default=99.99, metavar="P",
                   help="with --calib-method percentile: the percentile kept, at least 90 and under 100")
    g.add_argument("--eval-split", default="test", choices=("train", "test", "attack"),
                   help="held-out split of the fidelity check")
    g.add_argument("--eval-size", type=int, default=512, metavar="N", help="images in the fidelity check")
    add_seed(g, help="seed of the data splits and of the random weights without --checkpoint")
    t = p.add_argument_group("TensorRT")
    t.add_argument("--trt-int8", choices=("explicit", "implicit"), default="explicit",
                   help="explicit: from the Q/DQ graph; implicit: TensorRT's entropy calibrator + calib.cache")
    t.add_argument("--trt-workspace-mb", type=int, default=1024, metavar="MIB",
                   help="TensorRT builder workspace in MiB")
    t.add_argument("--max-batch", type=int, default=32, metavar="N", help="largest batch the engine accepts")
    add_out(p, help="bundle folder to create", force="replace an existing bundle in --out")
    add_key_file(p, "--sign-key",
                 help="secret key file (16+ bytes, e.g. 'openssl rand -hex 32 > key'): sign the bundle with "
                      "HMAC-SHA256 (signature.json); check it with 'bundle verify --verify-key FILE' "
                      "(default: unsigned)")
    add_quiet(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from edgesplit.export import ExportConfig
    from edgesplit.export.pipeline import export_bundle
    from edgesplit.export.signing import read_key

    key = read_key(args.sign_key) if args.sign_key else None  # a bad key file fails before any work

    config = ExportConfig(
        model=args.model, cut=args.cut, precision=args.precision, checkpoint=args.checkpoint,
        input_shape=args.input, num_classes=args.num_classes, wire=args.wire, format=args.format,
        target=args.target, int8_scope=args.int8_scope or ('all' if args.format == 'tensorrt' else 'auto'), calib_data=args.calib_data, calib_root=args.data_root, calib_split=args.calib_split,
        calib_size=args.calib_size, calib_method=args.calib_method, calib_percentile=args.calib_percentile,
        eval_split=args.eval_split, eval_size=args.eval_size, seed=args.seed, trt_int8=args.trt_int8,
        trt_workspace_mb=args.trt_workspace_mb, max_batch=args.max_batch)
    measurer = None
    if args.device != "local":
        from edgesplit.errors import ExportError
        from edgesplit.runtime.remote_measure import SshMeasurer

        if config.precision != "int8":  # (int8 with scope all: the unreachable board's fallback, not contacted)
            raise ExportError(f"--device {args.device} measures an INT8 head's --int8-scope auto on the board; a "
                              f"{config.precision} export measures nothing there: drop --device (and profile the "
                              f"bundle there with 'edgesplit profile --device')")

        measurer = SshMeasurer(board(args))  # contacted only when an int8 head's scope is measured
    bundle = export_bundle(config, args.out, force=args.force, progress=progress(args),
                           sign_key=key, measurer=measurer)
    m = bundle.manifest
    fid = m["fidelity"]
    wire = m["wire"]
    q = m.get("quantization") or {}
    print(f"wrote {bundle.path}: {m['model']['name']} head up to {m['cut']['name']} at {m['precision']}"
          + (f" ({q.get('target')}: {q.get('activation_type')} activations, {q.get('weight_type')} weights)"
             if m["precision"] == "int8" else ""))
    scope = q.get("scope") or {}
    if scope.get("asked") == "auto":
        print(f"int8 scope auto -> {scope['chosen']}: {scope['reason']}")
    print_table(["", "value"], [
        ("head.onnx bytes", fid["head_onnx_bytes"]),
        ("wire", f"{wire['format']} ({wire['dtype']}), {wire['bytes_per_sample']} B/sample"
         + (f", scale {wire['scale']:.6g}, zero-point {wire['zero_point']}" if wire["format"] == "int8" else "")),
        ("max abs error vs fp32", f"{fid['max_abs_error']:.4g}"),
        ("mean cosine vs fp32", f"{fid['mean_cosine']:.5f}"),
        ("feature SNR", f"{fid['snr_db']:.1f} dB"),
        ("tail top-1 (fp32 / exported features)",
         f"{fid['tail_top1_fp32_features']:.4f} / {fid['tail_top1_exported_features']:.4f}"),
        *[(f"engine {name}", f"TensorRT {r['tensorrt_version']} on {r['gpu']} (sm {r['compute_capability']})")
          for name, r in m.get("engines", {}).items()],
    ])
    return 0
