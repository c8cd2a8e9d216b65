"""The sweep report: one self-contained HTML file (plots and reconstruction grids embedded as PNG) and a
Markdown summary, from a results file and a plan; and the rows as CSV.

Per model: the summary table, the partition plan, the plots (head latency vs cut per precision, payload
bytes vs cut, attacker PSNR/SSIM vs cut, end-to-end latency vs bandwidth, and the privacy-latency Pareto
front with the golden zone marked) and every reconstruction grid; then the defenses, when swept.
`report_tables` makes the tables, `report_figures` the figures, `report_document` writes the document.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

from edgesplit.bench.plan import plan
from edgesplit.bench.report_document import (
    Document,
    Figure,
    Gallery,
    Heading,
    Paragraph,
    Table,
    to_html,
    to_markdown,
)
from edgesplit.bench.report_figures import PLOTS, model_plots, reconstruction_grids
from edgesplit.bench.report_tables import (
    bound_text,
    defense_table,
    plan_table,
    problems_table,
    summary_table,
    train_text,
)
from edgesplit.bench.rows import SweepRow, as_rows, ok_rows
from edgesplit.bench.store import read_sweep_rows
from edgesplit.errors import BenchError

TITLE = "edgesplit sweep report"
CSV_FIELDS = ("step", "status", "model", "cut", "precision", "backend", "device", "decoder", "kind", "latency_ms",
              "tail_ms", "payload_bytes", "head_onnx_bytes", "psnr", "ssim", "ms_ssim", "transfer_psnr",
              "transfer_ssim", "floor_psnr", "floor_ssim", "strongest", "reid_top1", "reid_top5", "reid_chance",
              "reid_floor", "recognition", "recognition_originals", "recognition_floor", "still_rising",
              "attacker_samples", "converged", "test_accuracy", "test_accuracy_fp32", "seconds", "reason",
              "spec_sha256")
_HOW_READ = ("server tail measured on the host (PyTorch fp32); PSNR/SSIM/re-identification/recognition: per "
             "figure, the strongest of the decoders the sweep trained to convergence on the exact wire features. "
             "Re-id top-1: share of held-out images whose reconstruction picks out its own original among all of "
             "them; recognised: share of reconstructions an independent classifier labels correctly. INT8 speed-up "
             "all / auto: the all-INT8 head's and the exported head's speed over the FP32 head with the same int8 "
             "wire, measured interleaved on the export host (batch 1), with the scope auto chose: all, partial "
             "(regions slower in INT8 kept float) or none (the FP32 head).")


def write_csv(rows: Iterable[SweepRow | Mapping], path: str | Path) -> Path:
    """The rows flattened to the columns most analyses need (pandas reads the JSON lines directly too)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in as_rows(rows):
            writer.writerow({k: r.get(k) for k in CSV_FIELDS})
    return path


def write_report(results: str | Path, out_dir: str | Path, bandwidths_mbit=(1.0, 10.0, 100.0, 1000.0),
                 rtt_ms: float = 10.0, max_psnr: float | None = None, max_ssim: float | None = None,
                 source: str | None = None, precisions: tuple[str, ...] | None = None,
                 max_reid: float | None = None, max_recognition: float | None = None) -> dict[str, Path]:
    """Write OUT/report.html, OUT/report.md, OUT/results.csv and OUT/figures/*.png (plots and every
    reconstruction grid); return their paths."""
    results = Path(results)
    rows = read_sweep_rows(results)
    if not rows:
        raise BenchError(f"{results} holds no rows yet: run the sweep first")
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    doc = Document(TITLE, _lead(rows, results))
    figures: dict[str, Path] = {}
    for model in dict.fromkeys(r.model for r in rows if r.model):
        p = plan(rows, model, source, bandwidths_mbit, rtt_ms, max_psnr, max_ssim, precisions=precisions,
                 max_reid=max_reid, max_recognition=max_recognition)
        model_rows = [r for r in rows if r.model == model and r.defense is None]
        defended = [r for r in rows if r.model == model and r.defense is not None]
        plots = model_plots(model_rows, model, p, bandwidths_mbit)
        grids = reconstruction_grids(model_rows, results.parent)
        named = {name: png for name, png in plots.items() if png is not None}
        named.update({f"grid-{name}": png for name, (_, png) in grids.items()})
        for name, png in named.items():
            path = out / "figures" / f"{model}-{name}.png"
            path.write_bytes(png)
            figures[f"{model}-{name}"] = path
        doc.body += _model_blocks(model, model_rows, p, plots, list(grids.values()))
        if defended:
            doc.body.append(Table(*defense_table(model_rows + defended),
                                  heading=Heading(3, "Defenses", full="Defenses (adaptive attacker, INT8 head where swept)")))
    problems = problems_table(rows)
    if problems:
        doc.appendix.append(Table(*problems, heading=Heading(2, "Skipped and failed steps"), css_class="text",
                                  detail=True))
    paths = {"html": out / "report.html", "markdown": out / "report.md", "csv": out / "results.csv"}
    paths["html"].write_text(to_html(doc))
    paths["markdown"].write_text(to_markdown(doc))
    write_csv(rows, paths["csv"])
    paths.update(figures)
    return paths


def _model_blocks(model: str, rows: list[SweepRow], p: dict, plots: dict[str, bytes | None],
                  grids: list[tuple[str, bytes]]) -> list:
    head = f"{train_text(rows)}. Head latency: {p['head_source']} ({p['head_kind']})"
    blocks = [Heading(2, model), Paragraph(f"{head}.", full=f"{head}; {_HOW_READ}"), Table(*summary_table(rows)),
              Heading(3, "Partition plan"), Paragraph(f"Round trip {p['rtt_ms']} ms; privacy bound: {bound_text(p)}."),
              Table(*plan_table(p))]
    blocks += [Figure(png, PLOTS[name], f"figures/{model}-{name}.png", name)
               for name, png in plots.items() if png is not None]
    if grids:
        blocks.append(Gallery(Heading(3, "Reconstructions per cut (originals over reconstructions)"), grids))
    return blocks


def _lead(rows: list[SweepRow], results: Path) -> Paragraph:
    """What the report is made from: the results file, its steps by status, the specs and the CPU measured on."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    cpu = next((r.fields["cpu"] for r in ok_rows(rows, "profile") if r.fields.get("cpu")), "unknown")
    specs = sorted({r.spec_sha256[:12] for r in rows})
    text = (f"{results.name}: {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))} steps; spec "
            f"{', '.join(specs)}; measured on {cpu}")
    return Paragraph(f"{text}.", full=f"{text}; report written {dt.datetime.now().isoformat(timespec='seconds')}.")
