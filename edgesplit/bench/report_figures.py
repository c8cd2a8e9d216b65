"""The report's figures, as PNG bytes: matplotlib plots per model (head latency, payload and attacker figures
vs cut, end-to-end latency vs bandwidth, the privacy-latency Pareto front with the golden zone) and the
reconstruction grids the audits saved.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from edgesplit.bench.report_tables import by_precision, measured_source, swept_cuts
from edgesplit.bench.rows import SweepRow, ok_rows

PRECISION_COLOURS = {"fp32": "#1f77b4", "fp16": "#2ca02c", "int8": "#d62728", "-": "#7f7f7f"}
PRECISION_MARKERS = {"fp32": "o", "fp16": "s", "int8": "^"}  # distinct shapes: equal values stay visible
# The figure a privacy bound is drawn on, in the order the report prefers it: recognisability first.
BOUND_AXES = (("max_reid", "reid", "top-1 re-identification rate"),
              ("max_recognition", "recognition", "recognition rate of the reconstructions"),
              ("max_psnr", "psnr", "attacker PSNR, dB"), ("max_ssim", "ssim", "attacker SSIM"))
# The plots of one model, in the report's order, with their captions.
PLOTS = {"latency": "Head latency vs cut", "payload": "Payload vs cut", "leakage": "Attacker vs cut",
         "e2e": "End-to-end latency vs bandwidth", "pareto": "Privacy–latency Pareto front"}


def model_plots(rows: list[SweepRow], model: str, p: dict, bandwidths) -> dict[str, bytes | None]:
    """Every plot of PLOTS for one model's undefended rows and its plan (None: nothing to draw)."""
    return {"latency": plot_latency(rows, model), "payload": plot_payload(rows, model),
            "leakage": plot_leakage(rows, model), "e2e": plot_e2e(p), "pareto": plot_pareto(p, bandwidths)}


def figure(ncols: int = 1, width: float = 7.5):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, ncols, figsize=(width, 3.6), dpi=110)
    return plt, fig, ax


def to_png(plt, fig) -> bytes:
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


def plot_latency(rows: list[SweepRow], model: str) -> bytes | None:
    cuts, source = swept_cuts(rows), measured_source(rows)
    if not cuts:
        return None
    plt, fig, ax = figure()
    if source:
        _series(ax, cuts, by_precision(rows, "profile", "latency_ms", lambda r: (r.backend, r.device) == source),
                label_suffix=f" ({source[0]}@{source[1]}, measured)")
    for device in dict.fromkeys(r.device for r in ok_rows(rows, "estimate")):
        _series(ax, cuts, by_precision(rows, "estimate", "latency_ms", lambda r, d=device: r.device == d),
                style="--", label_suffix=f" ({device}, estimate)")
    tails = {r.cut: r.fields["tail_ms"] for r in ok_rows(rows, "tail")}
    ax.plot(range(len(cuts)), [tails.get(c, math.nan) for c in cuts], ":", color="black",
            label="server tail (fp32, measured)")
    return _finish_log_plot(plt, fig, ax, "p50 latency, ms (batch 1)", f"{model}: head latency on the device vs cut")


def plot_payload(rows: list[SweepRow], model: str) -> bytes | None:
    cuts = swept_cuts(rows)
    by_prec = by_precision(rows, "export", "payload_bytes")
    if not cuts or not by_prec:
        return None
    plt, fig, ax = figure()
    _series(ax, cuts, by_prec)
    raw = next((r.fields["payload_bytes"] for r in ok_rows(rows, "tail") if r.cut == "input"), None)
    if raw:
        ax.axhline(raw, color="grey", ls="--", lw=1, label="the 8-bit input image")
    return _finish_log_plot(plt, fig, ax, "bytes per sample on the wire", f"{model}: payload vs cut")


def _finish_log_plot(plt, fig, ax, ylabel: str, title: str) -> bytes:
    """A one-axis plot per cut finished the same way: log y axis, its label, the title and a legend; the PNG."""
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return to_png(plt, fig)


def plot_leakage(rows: list[SweepRow], model: str) -> bytes | None:
    cuts, audits = swept_cuts(rows), ok_rows(rows, "audit")
    if not cuts or not audits:
        return None
    plt, fig, (a1, a2) = figure(ncols=2, width=9)
    _series(a1, cuts, by_precision(rows, "audit", "psnr"))
    _series(a2, cuts, by_precision(rows, "audit", "ssim"))
    a1.axhline(audits[0].fields["floor_psnr"], color="grey", ls="--", lw=1, label="floor (mean image)")
    a2.axhline(audits[0].fields["floor_ssim"], color="grey", ls="--", lw=1, label="floor (mean image)")
    curve = {r.cut: r for r in audits if r.fields.get("still_rising")}
    for i, c in enumerate(cuts):
        if c in curve:
            a1.annotate("still rising", (i, curve[c].fields["psnr"]), fontsize=6, xytext=(0, 6),
                        textcoords="offset points", ha="center", color="darkred")
    a1.set_ylabel("attacker PSNR, dB (higher leaks more)")
    a2.set_ylabel("attacker SSIM")
    a1.set_title(f"{model}: reconstruction PSNR", fontsize=9)
    a2.set_title(f"{model}: reconstruction SSIM", fontsize=9)
    a1.legend(fontsize=7)
    return to_png(plt, fig)


def plot_e2e(p: dict) -> bytes:
    plt, fig, ax = figure()
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
    return to_png(plt, fig)


def bound_axis(p: dict) -> tuple[str, str, float | None]:
    """(option field, axis label, limit) of the figure the golden zone is drawn on: the first bound given, in
    the order of BOUND_AXES (recognisability first), else PSNR without a limit."""
    for key, field_name, label in BOUND_AXES:
        if p["privacy_bound"].get(key) is not None:
            return field_name, label, p["privacy_bound"][key]
    return "psnr", "attacker PSNR, dB", None


def plot_pareto(p: dict, bandwidths) -> bytes | None:
    field_name, label, bound = bound_axis(p)
    points = [o for o in p["options"] if o.get(field_name) is not None and o["cut"] != "input"]
    if not points:
        return None
    bw = str(float(sorted(bandwidths)[len(bandwidths) // 2]))
    plt, fig, ax = figure()
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
    return to_png(plt, fig)


def reconstruction_grids(rows: list[SweepRow], base: Path) -> dict[str, tuple[str, bytes]]:
    """Every audit's reconstruction grid, by "cut-precision[-decoder]": (caption, PNG). Paths in the rows are
    relative to `base`, the results file's folder; a grid no longer there is left out."""
    out = {}
    for r in ok_rows(rows, "audit"):
        f = r.fields
        path = base / f["grid"]
        if not path.is_file():
            continue
        name = f"{r.cut}-{r.precision}" + ("" if r.decoder == "auto" else f"-{r.decoder}")
        reid = f", re-id top-1 {f['reid_top1']:.0%}" if f.get("reid_top1") is not None else ""
        out[name] = (f"{r.cut} ({r.precision} wire, {f.get('strongest') or r.decoder}: PSNR "
                     f"{f['psnr']:.1f} dB, SSIM {f['ssim']:.3f}{reid})", path.read_bytes())
    return out
