"""The sweep report: one self-contained HTML file (plots and reconstruction grids embedded as PNG) and a
Markdown summary, from a results file and a plan.

Plots per model: head latency vs cut per precision, payload bytes vs cut, attacker PSNR/SSIM vs cut,
end-to-end latency vs bandwidth, and the privacy-latency Pareto front with the golden zone marked.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import math
from pathlib import Path

from edgesplit.bench.plan import plan
from edgesplit.bench.store import read_results
from edgesplit.errors import BenchError

PRECISION_COLOURS = {"fp32": "#1f77b4", "fp16": "#2ca02c", "int8": "#d62728", "-": "#7f7f7f"}
PRECISION_MARKERS = {"fp32": "o", "fp16": "s", "int8": "^"}  # distinct shapes: equal values stay visible
CSV_FIELDS = ("step", "status", "model", "cut", "precision", "backend", "device", "decoder", "kind", "latency_ms",
              "tail_ms", "payload_bytes", "head_onnx_bytes", "psnr", "ssim", "ms_ssim", "transfer_psnr",
              "transfer_ssim", "floor_psnr", "floor_ssim", "strongest", "reid_top1", "reid_top5", "reid_chance",
              "reid_floor", "recognition", "recognition_originals", "recognition_floor", "still_rising",
              "attacker_samples", "converged", "test_accuracy", "test_accuracy_fp32", "seconds", "reason",
              "spec_sha256")
# The figure a privacy bound is drawn on, in the order the report prefers it: recognisability first.
BOUND_AXES = (("max_reid", "reid", "top-1 re-identification rate"),
              ("max_recognition", "recognition", "recognition rate of the reconstructions"),
              ("max_psnr", "psnr", "attacker PSNR, dB"), ("max_ssim", "ssim", "attacker SSIM"))


def write_csv(rows: list[dict], path: str | Path) -> Path:
    """The rows flattened to the columns most analyses need (pandas reads the JSON lines directly too)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k) for k in CSV_FIELDS})
    return path


def write_report(results: str | Path, out_dir: str | Path, bandwidths_mbit=(1.0, 10.0, 100.0, 1000.0),
                 rtt_ms: float = 10.0, max_psnr: float | None = None, max_ssim: float | None = None,
                 source: str | None = None, precisions: tuple[str, ...] | None = None,
                 max_reid: float | None = None, max_recognition: float | None = None) -> dict[str, Path]:
    """Write OUT/report.html, OUT/report.md, OUT/results.csv and OUT/figures/*.png (plots and every
    reconstruction grid); return their paths."""
    results = Path(results)
    rows = read_results(results)
    if not rows:
        raise BenchError(f"{results} holds no rows yet: run the sweep first")
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    base = results.parent
    models = list(dict.fromkeys(r["model"] for r in rows if r.get("model")))
    html_parts, md_parts, figures = [], [], {}
    for model in models:
        p = plan(rows, model, source, bandwidths_mbit, rtt_ms, max_psnr, max_ssim, precisions=precisions,
                 max_reid=max_reid, max_recognition=max_recognition)
        model_rows = [r for r in rows if r.get("model") == model and r.get("defense") is None]
        defended = [r for r in rows if r.get("model") == model and r.get("defense") is not None]
        figs = {
            "latency": _plot_latency(model_rows, model),
            "payload": _plot_payload(model_rows, model),
            "leakage": _plot_leakage(model_rows, model),
            "e2e": _plot_e2e(p),
            "pareto": _plot_pareto(p, bandwidths_mbit),
        }
        for name, png in figs.items():
            if png is not None:
                path = out / "figures" / f"{model}-{name}.png"
                path.write_bytes(png)
                figures[f"{model}-{name}"] = path
        grids = _grids(model_rows, base)
        for name, (_, png) in grids.items():
            path = out / "figures" / f"{model}-grid-{name}.png"
            path.write_bytes(png)
            figures[f"{model}-grid-{name}"] = path
        html_parts.append(_html_model(model, model_rows, p, figs, list(grids.values())))
        md_parts.append(_md_model(model, model_rows, p, figs))
        if defended:
            h, t = defense_table(model_rows + defended)
            html_parts.append("<h3>Defenses (adaptive attacker, INT8 head where swept)</h3>" + _html_table(h, t))
            md_parts.append("### Defenses\n\n" + _md_table(h, t))
    meta = _meta(rows, results)
    page = _HTML.format(title="edgesplit sweep report", meta=_html_meta(meta), body="\n".join(html_parts),
                        problems=_html_problems(rows))
    paths = {"html": out / "report.html", "markdown": out / "report.md", "csv": out / "results.csv"}
    paths["html"].write_text(page)
    paths["markdown"].write_text("# edgesplit sweep report\n\n" + _md_meta(meta) + "\n".join(md_parts))
    write_csv(rows, paths["csv"])
    paths.update(figures)
    return paths


# --- data helpers ------------------------------------------------------------------------------------


def _ok(rows, step):
    return [r for r in rows if r.get("step") == step and r.get("status") == "ok"]


def _cuts(rows) -> list[str]:
    return [r["cut"] for r in _ok(rows, "tail") if r["cut"] != "input"]


def _by_precision(rows, step, value, source_filter=None):
    """{precision: {cut: value}} for a step, the first row per (cut, precision) (max over decoders for audits)."""
    out: dict[str, dict[str, float]] = {}
    for r in _ok(rows, step):
        if source_filter and not source_filter(r):
            continue
        v = r.get(value)
        if v is None:
            continue
        cell = out.setdefault(r["precision"], {})
        cell[r["cut"]] = max(cell.get(r["cut"], -math.inf), v) if step == "audit" else cell.get(r["cut"], v)
    return out


def _measured_source(rows):
    profiles = _ok(rows, "profile")
    return (profiles[0]["backend"], profiles[0]["device"]) if profiles else None


# --- plots -------------------------------------------------------------------------------------------


def _figure(ncols: int = 1, width: float = 7.5):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, ncols, figsize=(width, 3.6), dpi=110)
    return plt, fig, ax


def _png(plt, fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _series(ax, cuts, by_prec, style="-", label_suffix=""):
    x = list(range(len(cuts)))
    for prec, values in by_prec.items():
        ys = [values.get(c, math.nan) for c in cuts]
        ax.plot(x, ys, style, marker=PRECISION_MARKERS.get(prec, "x"), color=PRECISION_COLOURS.get(prec),
                label=f"{prec}{label_suffix}", markersize=5, markerfacecolor="none", alpha=0.85)
    ax.set_xticks(x)
    ax.set_xticklabels(cuts, rotation=30, ha="right", fontsize=8)
    ax.grid(alpha=0.3)


def _plot_latency(rows, model):
    cuts, source = _cuts(rows), _measured_source(rows)
    if not cuts:
        return None
    plt, fig, ax = _figure()
    if source:
        _series(ax, cuts, _by_precision(rows, "profile", "latency_ms",
                                        lambda r: (r["backend"], r["device"]) == source),
                label_suffix=f" ({source[0]}@{source[1]}, measured)")
    for device in dict.fromkeys(r["device"] for r in _ok(rows, "estimate")):
        _series(ax, cuts, _by_precision(rows, "estimate", "latency_ms", lambda r, d=device: r["device"] == d),
                style="--", label_suffix=f" ({device}, estimate)")
    tails = {r["cut"]: r["tail_ms"] for r in _ok(rows, "tail")}
    ax.plot(range(len(cuts)), [tails.get(c, math.nan) for c in cuts], ":", color="black",
            label="server tail (fp32, measured)")
    ax.set_ylabel("p50 latency, ms (batch 1)")
    ax.set_yscale("log")
    ax.set_title(f"{model}: head latency on the device vs cut")
    ax.legend(fontsize=7)
    return _png(plt, fig)


def _plot_payload(rows, model):
    cuts = _cuts(rows)
    by_prec = _by_precision(rows, "export", "payload_bytes")
    if not cuts or not by_prec:
        return None
    plt, fig, ax = _figure()
    _series(ax, cuts, by_prec)
    raw = next((r["payload_bytes"] for r in _ok(rows, "tail") if r["cut"] == "input"), None)
    if raw:
        ax.axhline(raw, color="grey", ls="--", lw=1, label="the 8-bit input image")
    ax.set_yscale("log")
    ax.set_ylabel("bytes per sample on the wire")
    ax.set_title(f"{model}: payload vs cut")
    ax.legend(fontsize=7)
    return _png(plt, fig)


def _plot_leakage(rows, model):
    cuts, audits = _cuts(rows), _ok(rows, "audit")
    if not cuts or not audits:
        return None
    plt, fig, (a1, a2) = _figure(ncols=2, width=9)
    _series(a1, cuts, _by_precision(rows, "audit", "psnr"))
    _series(a2, cuts, _by_precision(rows, "audit", "ssim"))
    floor_psnr = audits[0]["floor_psnr"]
    floor_ssim = audits[0]["floor_ssim"]
    a1.axhline(floor_psnr, color="grey", ls="--", lw=1, label="floor (mean image)")
    a2.axhline(floor_ssim, color="grey", ls="--", lw=1, label="floor (mean image)")
    curve = {r["cut"]: r for r in audits if r.get("still_rising")}
    for i, c in enumerate(cuts):
        if c in curve:
            a1.annotate("still rising", (i, curve[c]["psnr"]), fontsize=6, xytext=(0, 6), textcoords="offset points",
                        ha="center", color="darkred")
    a1.set_ylabel("attacker PSNR, dB (higher leaks more)")
    a2.set_ylabel("attacker SSIM")
    a1.set_title(f"{model}: reconstruction PSNR", fontsize=9)
    a2.set_title(f"{model}: reconstruction SSIM", fontsize=9)
    a1.legend(fontsize=7)
    return _png(plt, fig)


def _plot_e2e(p):
    plt, fig, ax = _figure()
    bws = [float(b) for b in p["bandwidths_mbit"]]
    fastest: dict[str, dict] = {}
    for o in p["options"]:  # per cut, its fastest precision at the middle bandwidth
        mid = str(bws[len(bws) // 2])
        if o["cut"] not in fastest or o["e2e_ms"][mid] < fastest[o["cut"]]["e2e_ms"][mid]:
            fastest[o["cut"]] = o
    for cut, o in fastest.items():
        ys = [o["e2e_ms"][str(b)] for b in bws]
        label = "input (all on server)" if cut == "input" else f"{cut} ({o['precision']})"
        ax.plot(bws, ys, "-o", markersize=3, label=label, lw=2.2 if cut == "input" else 1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("link bandwidth, Mbit/s")
    ax.set_ylabel("end-to-end latency, ms")
    ax.set_title(f"{p['model']}: end to end (head {p['head_source']} [{p['head_kind']}], rtt {p['rtt_ms']} ms)",
                 fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, ncol=2)
    return _png(plt, fig)


def bound_axis(p) -> tuple[str, str, float | None]:
    """(option field, axis label, limit) of the figure the golden zone is drawn on: the first bound given, in
    the order of BOUND_AXES (recognisability first), else PSNR without a limit."""
    for key, field_name, label in BOUND_AXES:
        if p["privacy_bound"].get(key) is not None:
            return field_name, label, p["privacy_bound"][key]
    return "psnr", "attacker PSNR, dB", None


def _plot_pareto(p, bandwidths):
    field_name, label, bound = bound_axis(p)
    points = [o for o in p["options"] if o.get(field_name) is not None and o["cut"] != "input"]
    if not points:
        return None
    bw = str(float(sorted(bandwidths)[len(bandwidths) // 2]))
    plt, fig, ax = _figure()
    for prec in dict.fromkeys(o["precision"] for o in points):
        mine = [o for o in points if o["precision"] == prec]
        ax.scatter([o["e2e_ms"][bw] for o in mine], [o[field_name] for o in mine],
                   color=PRECISION_COLOURS.get(prec), marker=PRECISION_MARKERS.get(prec, "o"), s=24, zorder=3,
                   label=prec)
    front, best = [], math.inf
    for o in sorted(points, key=lambda o: (o["e2e_ms"][bw], o[field_name])):
        if o[field_name] < best:
            front.append(o)
            best = o[field_name]
    for o in front:  # label the front only: the rest would overlap
        ax.annotate(f"{o['cut']} {o['precision']}", (o["e2e_ms"][bw], o[field_name]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    if len(front) > 1:  # one point is no front: no line (and no legend entry) for it
        ax.step([o["e2e_ms"][bw] for o in front], [o[field_name] for o in front], where="post", color="black",
                lw=1, label="Pareto front (faster and leaking less)")
    zone = p["golden_zone"].get(bw, [])
    if bound is not None:
        low, high = ax.get_ylim()
        if field_name in ("reid", "recognition"):  # rates: the whole 0..1 scale
            low, high = 0.0, max(high, 1.02)
        else:  # the band reaches below the bound, so that it shows even when every point is above it
            low = min(low, bound - 0.08 * (max(high, bound) - min(low, bound) or 1.0))
        ax.set_ylim(low, max(high, bound))
        ax.axhspan(low, bound, color="gold", alpha=0.25, label=f"golden zone: {field_name} <= {bound:g}")
        for z in zone:
            o = next((o for o in points if o["cut"] == z["cut"] and o["precision"] == z["precision"]), None)
            if o is not None:
                ax.scatter(o["e2e_ms"][bw], o[field_name], s=90, facecolors="none", edgecolors="goldenrod", lw=1.5,
                           zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel(f"end-to-end latency at {float(bw):g} Mbit/s, ms")
    ax.set_ylabel(label)
    ax.set_title(f"{p['model']}: privacy vs latency", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(plt, fig)


def _grids(rows, base: Path) -> dict[str, tuple[str, bytes]]:
    """Every audit's reconstruction grid, by "cut-precision[-decoder]": (caption, PNG)."""
    out = {}
    for r in _ok(rows, "audit"):
        path = base / r["grid"]
        if not path.is_file():
            continue
        name = f"{r['cut']}-{r['precision']}" + ("" if r.get("decoder") == "auto" else f"-{r.get('decoder')}")
        reid = f", re-id top-1 {r['reid_top1']:.0%}" if r.get("reid_top1") is not None else ""
        out[name] = (f"{r['cut']} ({r['precision']} wire, {r.get('strongest') or r.get('decoder')}: PSNR "
                     f"{r['psnr']:.1f} dB, SSIM {r['ssim']:.3f}{reid})", path.read_bytes())
    return out


# --- HTML and Markdown ---------------------------------------------------------------------------------


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _fmt(v, digits=2):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _summary_table(rows) -> tuple[list[str], list[list[str]]]:
    cuts = _cuts(rows)
    precs = list(dict.fromkeys(r["precision"] for r in _ok(rows, "export")))
    pay = _by_precision(rows, "export", "payload_bytes")
    acc = _by_precision(rows, "export", "test_accuracy")
    source = _measured_source(rows)
    lat = _by_precision(rows, "profile", "latency_ms", (lambda r: (r["backend"], r["device"]) == source)
                        if source else None)
    leak = {k: _by_precision(rows, "audit", k) for k in ("psnr", "ssim", "reid_top1", "recognition")}
    transfer = _by_precision(rows, "audit", "transfer_psnr")
    tails = {r["cut"]: r["tail_ms"] for r in _ok(rows, "tail")}
    shapes = {r["cut"]: "x".join(map(str, r.get("feature_shape", []))) for r in _ok(rows, "export")}
    rising = {r["cut"] for r in _ok(rows, "audit") if r.get("still_rising")}
    short = {(r["cut"], r["precision"]) for r in _ok(rows, "audit") if r.get("converged") is False}
    headers = ["cut", "features", "tail ms"]
    for p in precs:
        headers += [f"{p} bytes", f"{p} head ms", f"{p} top-1 acc", f"{p} PSNR", f"{p} SSIM", f"{p} re-id top-1",
                    f"{p} recognised"]
    if transfer:
        headers += [f"{p} transfer PSNR" for p in transfer]
    headers.append("more data leaks more?")
    table = []
    for c in cuts:
        line = [c, shapes.get(c, ""), _fmt(tails.get(c), 3)]
        for p in precs:
            line += [_fmt(pay.get(p, {}).get(c)), _fmt(lat.get(p, {}).get(c), 3), _pct(acc.get(p, {}).get(c)),
                     _fmt(leak["psnr"].get(p, {}).get(c)) + (" *" if (c, p) in short else ""),
                     _fmt(leak["ssim"].get(p, {}).get(c), 3),
                     _pct(leak["reid_top1"].get(p, {}).get(c)), _pct(leak["recognition"].get(p, {}).get(c))]
        line += [_fmt(transfer[p].get(c)) for p in transfer]
        line.append("yes: a lower bound" if c in rising else "–")
        table.append(line)
    table += _floor_lines(rows, len(headers))
    if short:
        table.append(["* an attacker cut short by the time budget (not converged): its figures are a lower bound"]
                     + [""] * (len(headers) - 1))
    return headers, table


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _floor_lines(rows, width: int) -> list[list[str]]:
    """The no-leakage reference and the attacker's data, as rows under the summary table."""
    audits = _ok(rows, "audit")
    if not audits:
        return []
    a = audits[0]
    text = (f"floor (the attacker's mean image): PSNR {_fmt(a.get('floor_psnr'))} dB, SSIM {_fmt(a.get('floor_ssim'), 3)}"
            + (f", re-id top-1 {_pct(a.get('reid_floor'))} (chance {_pct(a.get('reid_chance'))})"
               if a.get("reid_floor") is not None else "")
            + (f", recognised {_pct(a.get('recognition_floor'))} (originals {_pct(a.get('recognition_originals'))})"
               if a.get("recognition_floor") is not None else ""))
    samples = f"attacker: {a.get('attacker_samples')} samples; scored on {a.get('eval_samples', '?')} held-out images"
    return [[text] + [""] * (width - 1), [samples] + [""] * (width - 1)]


def defense_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Per cut and defense (the undefended baseline first): accuracy, and per precision the payload, head
    latency and the strongest attacker's PSNR / SSIM."""
    ok = [r for r in rows if r.get("status") == "ok"]
    base_acc = next((r["test_accuracy"] for r in ok if r["step"] == "train"), None)
    precs = list(dict.fromkeys(r["precision"] for r in ok if r["step"] == "export"))
    cells: dict[tuple[str, str | None], dict] = {}
    for r in ok:
        k = (r.get("cut"), r.get("defense"))
        cell = cells.setdefault(k, {})
        if r["step"] == "defend":
            cell["acc"] = r["test_accuracy"]
        elif r["step"] in ("export", "profile", "audit"):
            p = cell.setdefault(r["precision"], {})
            if r["step"] == "export":
                p["bytes"] = r["payload_bytes"]
            elif r["step"] == "profile" and "ms" not in p:
                p["ms"] = r["latency_ms"]
            elif r["step"] == "audit":
                for k in ("psnr", "ssim", "reid_top1"):
                    if r.get(k) is not None:
                        p[k] = max(p.get(k, -math.inf), r[k])
    headers = ["cut", "defense", "test accuracy"]
    for p in precs:
        headers += [f"{p} bytes", f"{p} head ms", f"{p} PSNR", f"{p} SSIM", f"{p} re-id top-1"]
    table = []
    cuts = list(dict.fromkeys(k[0] for k in cells if k[0] and k[0] != "input"))
    for cut in cuts:
        for (c, d), cell in sorted(((k, v) for k, v in cells.items() if k[0] == cut),
                                   key=lambda kv: (kv[0][1] is not None, kv[0][1] or "")):
            line = [c, d or "none (baseline)", _fmt(cell.get("acc", base_acc if d is None else None), 4)]
            for p in precs:
                v = cell.get(p, {})
                line += [_fmt(v.get("bytes")), _fmt(v.get("ms"), 3), _fmt(v.get("psnr")), _fmt(v.get("ssim"), 3),
                         _pct(v.get("reid_top1"))]
            table.append(line)
    return headers, table


def _plan_table(p) -> tuple[list[str], list[list[str]]]:
    headers = ["bandwidth", "fastest option", "its latency ms"]
    bounded = bool(p["best_private"])
    if bounded:
        headers += ["golden zone (meets the privacy bound)", "best private option", "its latency ms"]
    table = []
    for bw in p["bandwidths_mbit"]:
        k = str(float(bw))
        best = p["best"][k]
        line = [f"{float(bw):g} Mbit/s", best["name"], _fmt(best["e2e_ms"], 3)]
        if bounded:
            zone = _group(p["golden_zone"][k]) or "none"
            bp = p["best_private"][k]
            line += [zone, bp["name"] if bp else "none", _fmt(bp["e2e_ms"], 3) if bp else "–"]
        table.append(line)
    return headers, table


def _group(options: list[dict]) -> str:
    """'features.1 (fp32, int8), fc.1 (int8)': options grouped by cut."""
    cuts: dict[str, list[str]] = {}
    for o in options:
        cuts.setdefault(o["cut"], []).append(o["precision"])
    return ", ".join(f"{c} ({', '.join(p)})" for c, p in cuts.items())


def _html_table(headers, table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in line) + "</tr>" for line in table)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(headers, table) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in line) + " |" for line in table]
    return "\n".join(lines) + "\n"


def _bound_text(p) -> str:
    b = p["privacy_bound"]
    parts = [f"top-1 re-identification <= {b['max_reid']:.0%}" if b.get("max_reid") is not None else "",
             f"recognition <= {b['max_recognition']:.0%}" if b.get("max_recognition") is not None else "",
             f"PSNR <= {b['max_psnr']} dB" if b.get("max_psnr") is not None else "",
             f"SSIM <= {b['max_ssim']}" if b.get("max_ssim") is not None else ""]
    text = " and ".join(x for x in parts if x)
    return text or ("no privacy bound given (pass --max-reid, --max-recognition, --max-psnr or --max-ssim to "
                    "mark the golden zone)")


def _train_text(rows) -> str:
    t = _ok(rows, "train")
    return (f"trained here on {t[0]['data']} for {t[0]['epochs']} epochs: test accuracy "
            f"{t[0]['test_accuracy']:.4f}" if t else "weights as given in the spec")


def _html_model(model, rows, p, figs, grids) -> str:
    h, t = _summary_table(rows)
    ph, pt = _plan_table(p)
    parts = [f"<h2>{html.escape(model)}</h2>", f"<p>{html.escape(_train_text(rows))}. Head latency: "
             f"{html.escape(p['head_source'])} ({p['head_kind']}); server tail measured on the host (PyTorch "
             f"fp32); PSNR/SSIM/re-identification/recognition: per figure, the strongest of the decoders the sweep "
             f"trained to convergence on the exact wire features. Re-id top-1: share of held-out images whose "
             f"reconstruction picks out its own original among all of them; recognised: share of reconstructions "
             f"an independent classifier labels correctly.</p>",
             _html_table(h, t), "<h3>Partition plan</h3>",
             f"<p>Round trip {p['rtt_ms']} ms; privacy bound: {html.escape(_bound_text(p))}.</p>",
             _html_table(ph, pt)]
    captions = {"latency": "Head latency vs cut", "payload": "Payload vs cut", "leakage": "Attacker vs cut",
                "e2e": "End-to-end latency vs bandwidth", "pareto": "Privacy–latency Pareto front"}
    for name, png in figs.items():
        if png is not None:
            parts.append(f"<figure>{_img(png, captions[name])}<figcaption>{captions[name]}</figcaption></figure>")
    if grids:
        parts.append("<h3>Reconstructions per cut (originals over reconstructions)</h3><div class=grids>")
        parts += [f"<figure>{_img(png, cap)}<figcaption>{html.escape(cap)}</figcaption></figure>"
                  for cap, png in grids]
        parts.append("</div>")
    return "\n".join(parts)


def _md_model(model, rows, p, figs) -> str:
    h, t = _summary_table(rows)
    ph, pt = _plan_table(p)
    out = [f"## {model}\n", f"{_train_text(rows)}. Head latency: {p['head_source']} ({p['head_kind']}).\n",
           _md_table(h, t), "### Partition plan\n", f"Round trip {p['rtt_ms']} ms; privacy bound: {_bound_text(p)}.\n",
           _md_table(ph, pt)]
    out += [f"![{name}](figures/{model}-{name}.png)\n" for name, png in figs.items() if png is not None]
    return "\n".join(out)


def _meta(rows, results: Path) -> dict:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    cpu = next((r.get("cpu") for r in _ok(rows, "profile") if r.get("cpu")), "unknown")
    return {"results": results.name, "created": dt.datetime.now().isoformat(timespec="seconds"),
            "specs": sorted({r["spec_sha256"][:12] for r in rows}), "counts": counts, "cpu": cpu}


def _html_meta(meta) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in sorted(meta["counts"].items()))
    return (f"<p>{html.escape(meta['results'])}: {counts} steps; spec {', '.join(meta['specs'])}; measured on "
            f"{html.escape(meta['cpu'])}; report written {meta['created']}.</p>")


def _md_meta(meta) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in sorted(meta["counts"].items()))
    return f"{meta['results']}: {counts} steps; spec {', '.join(meta['specs'])}; measured on {meta['cpu']}.\n\n"


def _html_problems(rows) -> str:
    bad = [r for r in rows if r.get("status") in ("skipped", "failed")]
    if not bad:
        return ""
    seen, lines = set(), []
    for r in bad:
        key = (r["status"], r["step"], r.get("backend"), r.get("reason"))
        if key in seen:
            continue
        seen.add(key)
        lines.append([r["status"], r["step"], r.get("backend") or "", r.get("reason") or ""])
    return ("<h2>Skipped and failed steps</h2><div class=text>"
            + _html_table(["status", "step", "backend", "reason"], lines) + "</div>")


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child {{ text-align: left; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }} figcaption {{ font-size: 0.85em; color: #555; }}
.grids figure {{ display: inline-block; width: 48%; vertical-align: top; margin: 0.5em 0.5%; }}
.text td {{ text-align: left; }}
</style></head>
<body><h1>{title}</h1>
{meta}
{body}
{problems}
</body></html>
"""
