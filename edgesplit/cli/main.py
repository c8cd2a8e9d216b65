"""`edgesplit` entry point: builds the parser, dispatches, and maps errors to one line and exit 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgesplit.cli import (
    audit_cmd,
    bench_cmd,
    bundle_cmd,
    defend_cmd,
    devices_cmd,
    estimate_cmd,
    export_cmd,
    models_cmd,
    runtime_cmd,
    sweep_cmd,
    train_cmd,
)
from edgesplit.cli.common import OneLineParser
from edgesplit.errors import EdgesplitError

DESCRIPTION = """\
edgesplit: split inference on edge devices.

Cut a vision network into a head (runs on the device) and a tail (runs on a server);
profile every cut point, build deployable heads, and audit what the device sends.

Start here:
  edgesplit models                               the model zoo
  edgesplit cuts resnet18 --input 3x224x224      every cut point: shape, params, MACs, bytes on the wire
  edgesplit cuts model.onnx                      the same for a shipped ONNX file (export/audit take it too)
  edgesplit train classifier4 --data digits      train on the embedded digits (no download)
  edgesplit export resnet18 --cut layer2.1 --precision int8 --out b/   a deployable INT8 head bundle
  edgesplit bundle verify b/                     check every file against the manifest
  edgesplit profile b/ --batch 1,8               latency percentiles and memory on this device
  edgesplit emit b/ --split attack --out f.npz   the exact bytes the device sends, with sample ids
  edgesplit devices                              board profiles; 'devices detect' names this host
  edgesplit audit --bundle b/ --features f.npz --out a/   how well can an attacker rebuild the input?
  edgesplit defend classifier4 --cut features.1 --defense noise --out d/   a defended model
  edgesplit sweep spec.toml --out s/             every cut x precision x backend, audited; resumable
  edgesplit plan s/results.jsonl --max-psnr 18   best cut per link bandwidth; the golden partition zone
  edgesplit report s/results.jsonl --out r/      one HTML report with plots and reconstructions
  edgesplit demo                                 the whole job on the embedded data
"""


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="edgesplit", description=DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    from edgesplit import __version__

    parser.add_argument("--version", action="version", version=f"edgesplit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    models_cmd.register(sub)
    train_cmd.register(sub)
    export_cmd.register(sub)
    bundle_cmd.register(sub)
    runtime_cmd.register(sub)
    estimate_cmd.register(sub)
    devices_cmd.register(sub)
    audit_cmd.register(sub)
    defend_cmd.register(sub)
    sweep_cmd.register(sub)
    bench_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what --nproc runs again in each process
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except EdgesplitError as exc:
        print(f"edgesplit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgesplit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
