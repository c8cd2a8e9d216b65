"""`edgesplit sweep`, `plan`, `report` and `demo` (the sweep on the embedded digits)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgesplit.cli.arguments import (
    ALL_PRECISIONS,
    PRECISION_NAMES,
    add_json,
    add_nproc,
    add_out,
    add_quiet,
    names,
    progress,
)
from edgesplit.cli.common import print_table
from edgesplit.runners import BACKENDS
from edgesplit.vocab import PRECISIONS

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
PLAN_HELP = ("Plan the partition from sweep results: for each bandwidth, the end-to-end latency of every cut (head on "
             "the device + round trip + payload / bandwidth + tail on the server), the fastest cut, and with a privacy "
             "bound (--max-reid, --max-recognition, --max-psnr, --max-ssim) the golden partition zone (cuts whose "
             "strongest attacker stays within the bound) and the fastest cut inside it.")

DEMO_HELP = ("Train classifier4 on embedded data (offline: the digits, or --data faces for real face photographs), "
             "sweep all its block cuts at fp32/fp16/int8 on onnxruntime CPU, audit each with the worst case over "
             "decoders trained to convergence (with re-identification and recognition rates), plan the partition and "
             "write OUT/report/report.html. Resumable: run it again after an interruption and it continues.")

DEMO_BUDGET_S = 15.0


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

    p = sub.add_parser("plan", help="end-to-end latency per cut and link; best cut; golden partition zone",
                       description=PLAN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example: edgesplit plan sweeps/r18/results.jsonl --bandwidth 1,1000 --max-reid 0.05\n"
                              "         edgesplit plan r.jsonl --head estimate:raspberry-pi-5-8gb --rtt-ms 20")
    _plan_args(p)
    add_json(p, help=None)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("report", help="a self-contained HTML report and a Markdown summary of a sweep",
                       description="Write OUT/report.html (plots and reconstruction grids embedded), "
                                   "OUT/report.md, OUT/results.csv and OUT/figures/*.png from a sweep's results.")
    _plan_args(p)
    add_out(p, help="report folder")
    p.add_argument("--csv", default=None,
                   help="also write the rows as CSV to this path (default: none; OUT/results.csv is always written)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="the whole job on embedded data: train, sweep, audit, plan, report",
                       description=DEMO_HELP)
    p.add_argument("--data", default="digits", choices=("digits", "faces"),
                   help="digits (1,797 handwritten digits, the default) or faces (200 LFW crops: 100 faces, "
                        "100 non-faces), both shipped with scikit-learn / scikit-image")
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--epochs", type=int, default=8, help="classifier training epochs")
    p.add_argument("--attack-epochs", type=int, default=150,
                   help="decoder epoch ceiling (default 150; each decoder stops once it converges)")
    p.add_argument("--attack-budget", type=float, default=DEMO_BUDGET_S,
                   help=f"seconds of decoder training per audit (default {DEMO_BUDGET_S:g}, so that the demo ends "
                        f"within 10 minutes on 2 cores; each precision's decoders start from the previous "
                        f"one's, so the INT8 audit has trained for three budgets; 0: train every decoder until "
                        f"it converges, about 20 minutes more). An audit cut short says so in its record and "
                        f"in the report.")
    p.add_argument("--max-reid", type=float, default=0.05,
                   help="privacy bound for the golden zone: top-1 re-identification rate (default 0.05)")
    p.add_argument("--max-psnr", type=float, default=None,
                   help="also bound the attacker's PSNR in dB (default: none)")
    p.add_argument("--fresh", action="store_true")
    add_quiet(p, help=None)
    p.set_defaults(func=cmd_demo)


def _plan_args(p) -> None:
    p.add_argument("results", help="results.jsonl written by 'edgesplit sweep'")
    p.add_argument("--bandwidth", default="1,10,100,1000", help="link bandwidths in Mbit/s, comma-separated")
    p.add_argument("--rtt-ms", type=float, default=10.0, help="network round trip added to every option")
    p.add_argument("--max-reid", type=float, default=None,
                   help="privacy bound: top-1 re-identification rate of the strongest attacker (e.g. 0.05: at most "
                        "5 %% of held-out images picked out from their reconstruction; default: none)")
    p.add_argument("--max-recognition", type=float, default=None,
                   help="privacy bound: share of reconstructions an independent classifier labels correctly, "
                        "0-1 (default: none)")
    p.add_argument("--max-psnr", type=float, default=None,
                   help="privacy bound: strongest attacker's PSNR in dB (default: none)")
    p.add_argument("--max-ssim", type=float, default=None,
                   help="privacy bound: strongest attacker's SSIM, 0-1 (default: none)")
    p.add_argument("--max-latency-ms", type=float, default=None,
                   help="latency bound for the golden zone in ms (default: none)")
    p.add_argument("--model", default=None, help="which model of the sweep (default: the first)")
    p.add_argument("--head", default=None,
                   help="head latency source: BACKEND@DEVICE (measured, default the first) or estimate:PROFILE")
    p.add_argument("--precisions", default=None,
                   help=f"only these head precisions, comma-separated from {PRECISION_NAMES}, any case (e.g. fp32 "
                        "for a device without int8 kernels; default: all measured)")


def _floats(text: str) -> tuple[float, ...]:
    from edgesplit.errors import BenchError

    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise BenchError(f"--bandwidth {text!r} is not a comma-separated list of Mbit/s, e.g. 1,10,100") from None
    if not values:
        raise BenchError("--bandwidth names no bandwidth")
    return values


def _spec_from_args(args):
    from edgesplit.bench.spec import load_spec, spec_from_dict
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
        results = run_sweep(spec, args.out, fresh=args.fresh, append=args.append, progress=progress(args))
        if _one_of_several():
            return 0
    rows = read_results(results)
    _print_counts(rows, spec.sha256)
    print(f"results: {results}  (next: edgesplit plan {results} / edgesplit report {results} --out REPORT)")
    return _failures(rows, spec.sha256, "sweep")


PARENT_REPORTS = "EDGESPLIT_SWEEP_PARENT_REPORTS"


def _one_of_several() -> bool:
    """A process of a shared sweep that leaves the summary to another: every rank but 0 under torchrun, and
    every rank under `sweep --nproc` (its parent reports)."""
    import os

    from edgesplit.models import distributed

    return distributed.launched() and (distributed.launch_rank() != 0 or PARENT_REPORTS in os.environ)


def _failures(rows, spec_sha, command: str) -> int:
    """Name every step of the spec whose latest row failed, on stderr; 1 when there is one, else 0."""
    from edgesplit.bench.store import failed_steps

    failed = failed_steps(rows, spec_sha)
    for r in failed:
        print(f"edgesplit {command}: failed: {r.label}: {r.reason}", file=sys.stderr)
    if failed:
        print(f"edgesplit {command}: {len(failed)} step(s) failed (listed above): fix the cause and run the same "
              f"command again; the failed steps are retried and the finished ones kept", file=sys.stderr)
    return 1 if failed else 0


def _print_counts(rows, spec_sha) -> None:
    mine = [r for r in rows if r["spec_sha256"] == spec_sha]
    counts: dict[tuple[str, str], int] = {}
    for r in mine:
        counts[(r["step"], r["status"])] = counts.get((r["step"], r["status"]), 0) + 1
    print_table(["step", "status", "rows"], [(s, st, n) for (s, st), n in sorted(counts.items())])


def _plan(args):
    from edgesplit.bench import read_results
    from edgesplit.bench.plan import plan

    precisions = names(args.precisions) if args.precisions else None
    return plan(read_results(args.results), args.model, args.head, _floats(args.bandwidth), args.rtt_ms,
                args.max_psnr, args.max_ssim, args.max_latency_ms, precisions=precisions, max_reid=args.max_reid,
                max_recognition=args.max_recognition)


def cmd_plan(args) -> int:
    from edgesplit.cli.common import print_json

    p = _plan(args)
    if args.json:
        print_json(p)
        return 0
    print_plan(p)
    return 0


def print_plan(p: dict) -> None:
    from edgesplit.bench.report_tables import golden_zone_text

    print(f"{p['model']}: head latency from {p['head_source']} ({p['head_kind']}), server tail measured on the "
          f"host, round trip {p['rtt_ms']} ms")
    bws = p["bandwidths_mbit"]
    print_table(["option", "head ms", "payload B", "tail ms", "PSNR", "SSIM", "re-id", "recognised",
                 *[f"@{b:g} Mbit/s" for b in bws]],
                [((f"{o['cut']} {o['precision']}" if o["cut"] != "input" else "input (all on server)"),
                  f"{o['head_ms']:.3f}", o["payload_bytes"], f"{o['tail_ms']:.3f}",
                  "-" if o["psnr"] is None else f"{o['psnr']:.2f}", "-" if o["ssim"] is None else f"{o['ssim']:.3f}",
                  "-" if o.get("reid") is None else f"{o['reid']:.0%}",
                  "-" if o.get("recognition") is None else f"{o['recognition']:.0%}",
                  *[f"{o['e2e_ms'][str(float(b))]:.2f}" for b in bws]) for o in p["options"]])
    rows = []
    for b in bws:
        k = str(float(b))
        best = p["best"][k]
        line = [f"{b:g} Mbit/s", f"{best['name']} ({best['e2e_ms']:.2f} ms)"]
        if p["best_private"]:
            bp = p["best_private"][k]
            line += [golden_zone_text(p["golden_zone"][k]) or "none", f"{bp['name']} ({bp['e2e_ms']:.2f} ms)" if bp else "none"]
        rows.append(line)
    headers = ["link", "fastest"] + (["golden zone", "fastest inside it"] if p["best_private"] else [])
    print()
    print_table(headers, rows)
    if not p["best_private"]:
        print("(pass --max-reid, --max-recognition, --max-psnr or --max-ssim to mark the golden partition zone)")
    elif not p["audited"]:
        print("(these results hold no audits: leakage is unknown, so no cut is inside the zone)")


def cmd_report(args) -> int:
    from edgesplit.bench import read_results
    from edgesplit.bench.report import write_csv, write_report

    precisions = names(args.precisions) if args.precisions else None
    paths = write_report(args.results, args.out, _floats(args.bandwidth), args.rtt_ms, args.max_psnr,
                         args.max_ssim, args.head, precisions, max_reid=args.max_reid,
                         max_recognition=args.max_recognition)
    if args.csv:
        write_csv(read_results(args.results), args.csv)
    print(f"wrote {paths['html']} (open it in a browser), {paths['markdown']}, {paths['csv']}")
    return 0


def cmd_demo(args) -> int:
    import time

    from edgesplit.bench import read_results, run_sweep, spec_from_dict
    from edgesplit.bench.plan import plan
    from edgesplit.bench.report import write_report

    start = time.perf_counter()
    out = Path(args.out)
    spec = spec_from_dict({
        "sweep": {"models": [{"name": "classifier4", "input": "1x32x32", "train_epochs": args.epochs}],
                  "precisions": list(PRECISIONS), "backends": ["ort"], "decoders": ["auto"],
                  "estimate": ["raspberry-pi-5-8gb"]},
        "data": {"name": args.data},
        "profile": {},  # the sweep's defaults: within 5 % of a peer on the demo's sub-millisecond heads
        "attack": {"epochs": args.attack_epochs, "eval_limit": 256, "budget_s": args.attack_budget},
    })
    print(f"== edgesplit demo: classifier4 on the embedded {args.data}; every block cut at fp32/fp16/int8 on "
          "onnxruntime CPU, each audited by decoders trained to convergence on the exact wire features")
    results = run_sweep(spec, out, fresh=args.fresh, progress=progress(args))
    rows = read_results(results)
    _print_counts(rows, spec.sha256)
    print()
    print_plan(plan(rows, bandwidths_mbit=(1.0, 10.0, 100.0, 1000.0), rtt_ms=10.0, max_psnr=args.max_psnr,
                    max_reid=args.max_reid))
    paths = write_report(results, out / "report", max_psnr=args.max_psnr, max_reid=args.max_reid)
    print(f"\nreport: {paths['html']}  (summary {paths['markdown']}; rows {results}); "
          f"{time.perf_counter() - start:.0f} s")
    return _failures(rows, spec.sha256, "demo")
