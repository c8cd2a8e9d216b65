"""`edgesplit sweep`: models x cuts x precisions x backends x devices x decoders from a spec or flags, resumable,
in one process or shared by several (`--nproc`, torchrun)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgesplit.cli.arguments import ALL_PRECISIONS, PRECISION_NAMES, add_nproc, add_out, add_quiet, progress
from edgesplit.cli.common import print_table
from edgesplit.runners import BACKENDS

SWEEP_HELP = """\
Sweep models x cuts x precisions x backends x devices x decoders: export each head once, profile
it on every backend and device, emit the attack/test splits and audit them. Every finished step
appends one row to OUT/results.jsonl (JSON lines, readable by pandas.read_json(lines=True)); run the
same command again after a crash or Ctrl-C and it skips what is done. Impossible combinations
(tensorrt without TensorRT, int8 on the torch backend) are recorded as skipped, with the reason.

The spec is TOML (or give --model and friends instead):

  [sweep]
  precisions = ["fp32", "fp16", "int8"]
  backends = ["ort"]
  devices = ["local"]            # or "ssh://user@board"
  estimate = ["raspberry-pi-5-8gb"]   # roofline head latency for boards not at hand
  decoders = ["auto"]            # worst case over deconv + nonoverlap; "all"; or names
  audit = true
  int8_scope = "auto"            # int8 heads: nodes slower in INT8 on the device stay float
                                 # (this host, or the one ssh device swept); "all": every
                                 # node INT8 (needed with several devices, ssh among them)

  [[sweep.models]]
  name = "resnet18"
  input = "3x64x64"
  cuts = "blocks"                # or ["layer1", "layer2.1"]
  checkpoint = "runs/r18/model.pt"   # or train_epochs = 10

  [[sweep.models]]               # a shipped ONNX file (path from the spec's folder): cuts are its tensors
  onnx = "exports/model.onnx"    # ('edgesplit cuts exports/model.onnx' lists them); input only for dynamic H/W

  [data]
  name = "digits"                # or "faces" (embedded); other data sets need root = "local/copy"
  calib_size = 256

  [profile]
  batches = [1]
  warmup = 20                    # the standalone 'edgesplit profile' settings: sub-millisecond heads need
  iters = 200                    # this many calls to agree with a peer within 5 %
  min_seconds = 2.0
  threads = 0

  [attack]
  epochs = 150                   # a ceiling: 15-epoch cosine cycles until one gains < 0.5 dB
  budget_s = 0                   # > 0: at most this many seconds of decoder training per audit
  batch_size = 0                 # 0: about 40 steps an epoch
  attack_limit = 0
  eval_limit = 256
  learning_curve = true          # 25/50/100 % of the attacker's data at each cut's first precision

One sweep at a time per --out (OUT/sweep.lock names the one running). The spec is checked whole
before any work; each step's row records the sha256 of what it read, so a step whose inputs changed
(a re-exported bundle, new features) is redone with everything downstream of it.

--nproc N shares a sweep over N processes (torch's elastic launcher; 'torchrun --nproc-per-node N -m
edgesplit.cli.main sweep ...' does the same): the first runs every step but the audits, alone, so
profiles are timed on a quiet machine; then each process audits one unit (cut x defense, all its
precisions) in N, on its own GPU (one per process) or its share of the cores, appending to the same
results file. An interrupted shared sweep resumes like any other, with or without --nproc.

exit status: 0 when every step finished or was skipped for a recorded reason; 1 when a step failed
(each is named on stderr; run the same command again to retry it); 2 for a bad spec or --out.

examples:
  edgesplit sweep spec.toml --out sweeps/r18
  edgesplit sweep --model resnet18 --input 3x64x64 --no-audit --out sweeps/r18-speed
  edgesplit sweep spec.toml --train-device cuda --nproc 4 --out sweeps/r18   # 4 GPUs audit in parallel
  edgesplit plan sweeps/r18/results.jsonl --bandwidth 1,10,100,1000 --max-reid 0.05
  edgesplit report sweeps/r18/results.jsonl --out sweeps/r18/report --max-reid 0.05 --max-psnr 18
"""

# (one paragraph: argparse wraps it, or with plan's RawDescriptionHelpFormatter prints it as one line)

def register(sub) -> None:
    p = sub.add_parser("sweep", help="cuts x precisions x backends x devices x decoders, resumable",
                       description=SWEEP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", help="sweep spec (TOML); or use --model")
    p.add_argument("--model", help="instead of a spec: one model from the zoo (with --input, --cuts, ...; "
                                   "default: none, the spec file)")
    p.add_argument("--input", default="3x32x32", help="with --model: CxHxW")
    p.add_argument("--cuts", default="blocks", help="with --model: 'blocks' or comma-separated cut names")
    p.add_argument("--checkpoint", default=None,
                   help="with --model: trained weights (default: none: --train-epochs trains them, or random)")
    p.add_argument("--train-epochs", type=int, default=0, help="with --model and no checkpoint: train it this many epochs first (default 0: random weights)")
    p.add_argument("--precisions", default=ALL_PRECISIONS, help=f"head precisions, comma-separated from {PRECISION_NAMES}")
    p.add_argument("--backends", default="ort",
                   help=f"runtimes that time the heads, comma-separated: {', '.join(BACKENDS)}")
    p.add_argument("--devices", default="local",
                   help="where heads run, comma-separated: local and/or ssh://user@host[:port]")
    p.add_argument("--estimate", default="", help="board profiles to estimate head latency for")
    p.add_argument("--decoders", default="auto",
                   help="decoder families of the attacker, comma-separated: auto (worst case over deconv and "
                        "nonoverlap, the default), all, or names from 'edgesplit audit --list-decoders'")
    p.add_argument("--no-audit", action="store_true", help="export and profile only")
    p.add_argument("--data", default="digits",
                   help="data set for training, calibration and the attacker ('edgesplit datasets' lists them)")
    p.add_argument("--data-root", default=None,
                   help="folder with a local copy of --data (default: none; digits and faces are embedded)")
    p.add_argument("--attack-epochs", type=int, default=150,
                   help="decoder epoch ceiling (default 150; training stops earlier once it converges)")
    p.add_argument("--attack-budget", type=float, default=0.0,
                   help="at most this many seconds of decoder training per audit (default 0: until converged)")
    p.add_argument("--train-device", default=None, metavar="DEVICE",
                   help="where train, defend and audit steps train: cpu, cuda or auto (default: the spec's "
                        "train_device, auto: cuda when torch sees a GPU)")
    p.add_argument("--iters", type=int, default=200, help="at least this many timed calls per profile")
    p.add_argument("--min-seconds", type=float, default=2.0, help="and at least this many seconds per profile")
    p.add_argument("--threads", type=int, default=0,
                   help="threads for the device heads (0: the runtime's default); the server tail uses all")
    add_out(p, help="folder for results.jsonl, bundles, features, audits")
    p.add_argument("--fresh", action="store_true", help="start over (the old results file is kept aside)")
    p.add_argument("--append", action="store_true", help="add this spec's rows to a results file of another spec")
    add_nproc(p, help="processes to share the audits over (default 1): the first runs every other step, then each "
                      "audits one unit in N, on its own GPU or its share of the cores (torch's elastic launcher)")
    add_quiet(p, help=None)
    p.set_defaults(func=cmd_sweep)



def _spec_from_args(args):
    from edgesplit.bench.spec_file import load_spec, spec_from_dict
    from edgesplit.errors import BenchError

    if args.spec and args.model:
        raise BenchError("give a spec file or --model, not both")
    if args.spec:
        return load_spec(args.spec)
    if not args.model:
        raise BenchError("sweep needs a spec file or --model (see 'edgesplit sweep --help')")
    model = {"name": args.model, "input": args.input, "train_epochs": args.train_epochs,
             "cuts": args.cuts if args.cuts == "blocks" else [c for c in args.cuts.split(",") if c]}
    if args.checkpoint:
        model["checkpoint"] = args.checkpoint
    return spec_from_dict({
        "sweep": {"models": [model], "precisions": args.precisions, "backends": args.backends,
                  "devices": args.devices, "estimate": args.estimate, "decoders": args.decoders,
                  "audit": not args.no_audit},
        "data": {"name": args.data, "root": args.data_root},
        "profile": {"iters": args.iters, "min_seconds": args.min_seconds, "threads": args.threads},
        "attack": {"epochs": args.attack_epochs, "budget_s": args.attack_budget},
    })


def cmd_sweep(args) -> int:
    from edgesplit.bench import read_results, run_sweep

    spec = _spec_from_args(args)
    if args.train_device:
        import dataclasses

        spec = dataclasses.replace(spec, train_device=args.train_device)
    if args.nproc > 1:
        import os

        from edgesplit.bench.sweep import RESULTS, check_writable
        from edgesplit.cli.launch import relaunch
        from edgesplit.models.device import resolve_device

        check_writable(Path(args.out))  # one line here, not one per process
        os.environ[PARENT_REPORTS] = "1"  # the processes leave the summary and the exit status to this one
        try:
            relaunch(args, resolve_device(spec.train_device), "sweep")
        finally:
            os.environ.pop(PARENT_REPORTS, None)
        results = Path(args.out) / RESULTS
    else:
        from edgesplit.bench import sweep_ranks
        from edgesplit.models import distributed

        run = sweep_ranks.run_shared if distributed.launched() else run_sweep  # under torchrun: shared
        results = run(spec, Path(args.out), fresh=args.fresh, append=args.append, progress=progress(args))
        if _one_of_several():
            return 0
    rows = read_results(results)
    print_counts(rows, spec.sha256)
    print(f"results: {results}  (next: edgesplit plan {results} / edgesplit report {results} --out REPORT)")
    return report_failures(rows, spec.sha256, "sweep")


PARENT_REPORTS = "EDGESPLIT_SWEEP_PARENT_REPORTS"


def _one_of_several() -> bool:
    """A process of a shared sweep that leaves the summary to another: every rank but 0 under torchrun, and
    every rank under `sweep --nproc` (its parent reports)."""
    import os

    from edgesplit.models import distributed

    return distributed.launched() and (distributed.launch_rank() != 0 or PARENT_REPORTS in os.environ)


def report_failures(rows, spec_sha, command: str) -> int:
    """Name every step of the spec whose latest row failed, on stderr; 1 when there is one, else 0."""
    from edgesplit.bench.store import failed_steps

    failed = failed_steps(rows, spec_sha)
    for r in failed:
        print(f"edgesplit {command}: failed: {r.label}: {r.reason}", file=sys.stderr)
    if failed:
        print(f"edgesplit {command}: {len(failed)} step(s) failed (listed above): fix the cause and run the same "
              f"command again; the failed steps are retried and the finished ones kept", file=sys.stderr)
    return 1 if failed else 0


def print_counts(rows, spec_sha) -> None:
    mine = [r for r in rows if r["spec_sha256"] == spec_sha]
    counts: dict[tuple[str, str], int] = {}
    for r in mine:
        counts[(r["step"], r["status"])] = counts.get((r["step"], r["status"]), 0) + 1
    print_table(["step", "status", "rows"], [(s, st, n) for (s, st), n in sorted(counts.items())])
