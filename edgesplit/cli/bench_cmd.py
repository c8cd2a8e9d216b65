"""`edgesplit plan`, `report` and `demo` (the sweep on the embedded digits); `sweep` is `sweep_cmd`."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgesplit.cli.arguments import (
    PRECISION_NAMES,
    add_json,
    add_out,
    add_quiet,
    names,
    progress,
)
from edgesplit.cli.common import print_table
from edgesplit.cli.sweep_cmd import print_counts, report_failures
from edgesplit.vocab import PRECISIONS

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
    print_counts(rows, spec.sha256)
    print()
    print_plan(plan(rows, bandwidths_mbit=(1.0, 10.0, 100.0, 1000.0), rtt_ms=10.0, max_psnr=args.max_psnr,
                    max_reid=args.max_reid))
    paths = write_report(results, out / "report", max_psnr=args.max_psnr, max_reid=args.max_reid)
    print(f"\nreport: {paths['html']}  (summary {paths['markdown']}; rows {results}); "
          f"{time.perf_counter() - start:.0f} s")
    return report_failures(rows, spec.sha256, "demo")
