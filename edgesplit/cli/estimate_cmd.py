"""`edgesplit estimate`: roofline head latency per cut for a board not at hand."""

from __future__ import annotations

import argparse

from edgesplit.cli.arguments import ALL_PRECISIONS, PRECISION_NAMES, add_checkpoint, add_input, names
from edgesplit.cli.common import print_table

ESTIMATE_HELP = """\
Estimate head latency per cut on a board you do not have, from the head's MACs and bytes moved and
the board's published peak compute and memory bandwidth (a roofline with an efficiency factor).
These are ESTIMATES, labelled kind=estimate, and are never written into a file of measurements.
'edgesplit devices' lists the boards and where their figures come from.

examples:
  edgesplit estimate resnet18 --input 3x224x224 --device-profile jetson-orin-nano-8gb
  edgesplit estimate mobilenet_v3_small --input 3x224x224 --device-profile raspberry-pi-5-8gb --precision int8
"""


def register(sub) -> None:
    p = sub.add_parser("estimate", help="roofline latency estimates per cut for a board not at hand",
                       description=ESTIMATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    add_input(p, help="input shape per sample (default: the checkpoint's, else 3x224x224)")
    p.add_argument("--device-profile", required=True, metavar="NAME",
                   help="a profile from 'edgesplit devices'")
    p.add_argument("--precision", default=ALL_PRECISIONS, metavar="LIST",
                   help=f"comma-separated precisions: any of {PRECISION_NAMES}")
    p.add_argument("--efficiency", type=float, default=0.5, metavar="FRACTION",
                   help="fraction of the published peaks assumed reachable, in (0, 1]")
    add_checkpoint(p, help="a checkpoint from 'edgesplit train' (its shape is the default)")
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
    from edgesplit.bench.cut_estimates import estimate_cuts
    from edgesplit.runtime.results import append_row

    args.input = _estimate_input(args)
    precisions = list(names(args.precision))
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
