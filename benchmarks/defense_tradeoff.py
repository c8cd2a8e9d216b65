"""Privacy-utility of every defense (issue: defenses, must-show 1-2): classifier4 on the embedded digits,
two cuts, each defense at its two registry strengths, fine-tuned from the same trained baseline; INT8 head
on onnxruntime CPU (1 thread); the audit's default adaptive attacker (worst case over deconv and nonoverlap,
trained to convergence) on the defended INT8 wire features, with re-identification and recognition rates.

    python benchmarks/defense_tradeoff.py [--out /tmp/defense-sweep] [--epochs 2] [--cuts features.2]
                                          [--attack-budget 0]

Resumable (it is a sweep): run it again after an interruption. Prints the table and the trend checks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import machine  # noqa: E402

from edgesplit.bench import read_results, run_sweep, spec_from_dict  # noqa: E402
from edgesplit.bench.report_document import markdown_table  # noqa: E402
from edgesplit.bench.report_tables import defense_table  # noqa: E402
from edgesplit.defenses import DEFENSES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/defense-sweep")
    ap.add_argument("--cuts", default="features.1,features.2")
    ap.add_argument("--epochs", type=int, default=2, help="defense fine-tuning epochs (from the trained baseline)")
    ap.add_argument("--attack-epochs", type=int, default=150, help="decoder epoch ceiling (the audit's default)")
    ap.add_argument("--attack-budget", type=float, default=0.0,
                    help="seconds of decoder training per audit (default 0: until converged, the audit's default)")
    ap.add_argument("--decoder", default="auto")
    args = ap.parse_args()
    defenses = [{"name": d.name, "params": s, "epochs": args.epochs} for d in DEFENSES.values()
                for s in d.strengths if s or d.name == "normalize"]
    defenses = list({(d["name"], tuple(sorted(d["params"].items()))): d for d in defenses}.values())
    spec = spec_from_dict({
        "sweep": {"models": [{"name": "classifier4", "input": "1x32x32", "cuts": args.cuts.split(","),
                              "train_epochs": 8}],
                  "precisions": ["int8"], "backends": ["ort"], "decoders": [args.decoder], "defenses": defenses},
        "profile": {"iters": 100, "min_seconds": 0.3, "threads": 1},
        "attack": {"epochs": args.attack_epochs, "eval_limit": 256, "budget_s": args.attack_budget,
                   "learning_curve": False},
    })
    print(f"machine: {machine()}")
    results = run_sweep(spec, args.out)
    rows = read_results(results)
    headers, table = defense_table(rows)
    print(markdown_table(headers, table))
    failed = [r for r in rows if r["status"] == "failed"]
    for r in failed:
        print(f"FAILED {r['step']} {r.get('cut')} {r.get('defense')}: {r.get('reason')}")
    _trends(table)


def _trends(table) -> None:
    """The literature's predictions, checked on the table: more noise, lower accuracy and PSNR; pruning and
    channel subsets send less."""
    def row(cut, defense):
        return next((r for r in table if r[0] == cut and r[1] == defense), None)

    from edgesplit.bench.spec import DefenseEntry

    weak_noise, strong_noise = (DefenseEntry("noise", p).label for p in DEFENSES["noise"].strengths)
    for cut in dict.fromkeys(r[0] for r in table):
        weak, strong = row(cut, weak_noise), row(cut, strong_noise)
        base = row(cut, "none (baseline)")
        if weak and strong and base:
            print(f"{cut}: {weak_noise} -> {strong_noise}: accuracy {weak[2]} -> {strong[2]}, PSNR {weak[5]} -> "
                  f"{strong[5]} (baseline accuracy {base[2]}, PSNR {base[5]})")
        for name in ("pruning(keep_ratio=0.25)", "channel-subset(ratio=0.125)", "bottleneck(channels=4)"):
            r = row(cut, name)
            if r and base:
                print(f"{cut}: {name}: payload {base[3]} -> {r[3]} B, head {base[4]} -> {r[4]} ms, "
                      f"PSNR {base[5]} -> {r[5]}")


if __name__ == "__main__":
    main()
