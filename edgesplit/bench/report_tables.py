"""The report's tables and sentences, from sweep rows and a plan: per-precision pivots of the rows, the
summary table per model, the defense table, the partition-plan table and the golden zone grouped by cut.

Every table is (headers, lines of cell strings), for `report_document` to render; nothing here knows HTML.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from edgesplit.bench.rows import SweepRow, as_rows, ok_rows

Table = tuple[list[str], list[list[str]]]


# --- pivots of the rows --------------------------------------------------------------------------------


def swept_cuts(rows: list[SweepRow]) -> list[str]:
    """The cuts a sweep measured a tail for, in sweep order (not the whole-model "input" option)."""
    return [r.cut for r in ok_rows(rows, "tail") if r.cut != "input"]


def by_precision(rows: list[SweepRow], step: str, value: str,
                 source_filter: Callable[[SweepRow], bool] | None = None) -> dict[str, dict[str, float]]:
    """{precision: {cut: value}} for a step, the first row per (cut, precision) (max over decoders for audits)."""
    out: dict[str, dict[str, float]] = {}
    for r in ok_rows(rows, step):
        if source_filter and not source_filter(r):
            continue
        v = r.fields.get(value)
        if v is None:
            continue
        cell = out.setdefault(r.precision, {})
        cell[r.cut] = max(cell.get(r.cut, -math.inf), v) if step == "audit" else cell.get(r.cut, v)
    return out


def measured_source(rows: list[SweepRow]) -> tuple[str, str] | None:
    """(backend, device) of the first measured head latency, or None when nothing was profiled."""
    profiles = ok_rows(rows, "profile")
    return (profiles[0].backend, profiles[0].device) if profiles else None


# --- cells and sentences -------------------------------------------------------------------------------


def fmt(v, digits=2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def speedup_text(fields: dict | None) -> str:
    """'0.59× / 1.00× (none)': an int8 export's speed-up over the FP32 head (same wire) of the all-INT8 head and of
    the head `auto` chose, measured interleaved at export, and the scope it chose."""
    if not fields:
        return "–"
    s = fields["int8_speedup"]
    return f"{s['all']:.2f}× / {s['auto']:.2f}× ({fields['int8_scope']['chosen']})"


def golden_zone_text(options: list[dict]) -> str:
    """'features.1 (fp32, int8), fc.1 (int8)': a plan's options (its golden zone) grouped by cut."""
    cuts: dict[str, list[str]] = {}
    for o in options:
        cuts.setdefault(o["cut"], []).append(o["precision"])
    return ", ".join(f"{c} ({', '.join(p)})" for c, p in cuts.items())


def bound_text(p: dict) -> str:
    b = p["privacy_bound"]
    parts = [f"top-1 re-identification <= {b['max_reid']:.0%}" if b.get("max_reid") is not None else "",
             f"recognition <= {b['max_recognition']:.0%}" if b.get("max_recognition") is not None else "",
             f"PSNR <= {b['max_psnr']} dB" if b.get("max_psnr") is not None else "",
             f"SSIM <= {b['max_ssim']}" if b.get("max_ssim") is not None else ""]
    text = " and ".join(x for x in parts if x)
    return text or ("no privacy bound given (pass --max-reid, --max-recognition, --max-psnr or --max-ssim to "
                    "mark the golden zone)")


def train_text(rows: list[SweepRow]) -> str:
    t = ok_rows(rows, "train")
    return (f"trained here on {t[0].fields['data']} for {t[0].fields['epochs']} epochs: test accuracy "
            f"{t[0].fields['test_accuracy']:.4f}" if t else "weights as given in the spec")


# --- tables --------------------------------------------------------------------------------------------


def summary_table(rows: list[SweepRow]) -> Table:
    """Per cut: feature shape, tail latency, and per precision the payload, head latency, accuracy and the
    strongest attacker's figures; the floor and the attacker's data under it."""
    cuts = swept_cuts(rows)
    precs = list(dict.fromkeys(r.precision for r in ok_rows(rows, "export")))
    pay = by_precision(rows, "export", "payload_bytes")
    acc = by_precision(rows, "export", "test_accuracy")
    source = measured_source(rows)
    lat = by_precision(rows, "profile", "latency_ms", (lambda r: (r.backend, r.device) == source)
                       if source else None)
    leak = {k: by_precision(rows, "audit", k) for k in ("psnr", "ssim", "reid_top1", "recognition")}
    transfer = by_precision(rows, "audit", "transfer_psnr")
    tails = {r.cut: r.fields["tail_ms"] for r in ok_rows(rows, "tail")}
    shapes = {r.cut: "x".join(map(str, r.fields.get("feature_shape", []))) for r in ok_rows(rows, "export")}
    speedups = {r.cut: r.fields for r in ok_rows(rows, "export") if r.precision == "int8"
                and r.fields.get("int8_speedup")}
    rising = {r.cut for r in ok_rows(rows, "audit") if r.fields.get("still_rising")}
    short = {(r.cut, r.precision) for r in ok_rows(rows, "audit") if r.fields.get("converged") is False}
    headers = ["cut", "features", "tail ms"]
    for p in precs:
        headers += [f"{p} bytes", f"{p} head ms", f"{p} top-1 acc", f"{p} PSNR", f"{p} SSIM", f"{p} re-id top-1",
                    f"{p} recognised"] + (["int8 speed-up all / auto"] if p == "int8" and speedups else [])
    if transfer:
        headers += [f"{p} transfer PSNR" for p in transfer]
    headers.append("more data leaks more?")
    table = []
    for c in cuts:
        line = [c, shapes.get(c, ""), fmt(tails.get(c), 3)]
        for p in precs:
            line += [fmt(pay.get(p, {}).get(c)), fmt(lat.get(p, {}).get(c), 3), pct(acc.get(p, {}).get(c)),
                     fmt(leak["psnr"].get(p, {}).get(c)) + (" *" if (c, p) in short else ""),
                     fmt(leak["ssim"].get(p, {}).get(c), 3),
                     pct(leak["reid_top1"].get(p, {}).get(c)), pct(leak["recognition"].get(p, {}).get(c))]
            line += [speedup_text(speedups.get(c))] if p == "int8" and speedups else []
        line += [fmt(transfer[p].get(c)) for p in transfer]
        line.append("yes: a lower bound" if c in rising else "–")
        table.append(line)
    table += _floor_lines(rows, len(headers))
    if short:
        table.append(["* an attacker cut short by the time budget (not converged): its figures are a lower bound"]
                     + [""] * (len(headers) - 1))
    return headers, table


def _floor_lines(rows: list[SweepRow], width: int) -> list[list[str]]:
    """The no-leakage reference and the attacker's data, as rows under the summary table."""
    audits = ok_rows(rows, "audit")
    if not audits:
        return []
    a = audits[0].fields
    text = (f"floor (the attacker's mean image): PSNR {fmt(a.get('floor_psnr'))} dB, SSIM {fmt(a.get('floor_ssim'), 3)}"
            + (f", re-id top-1 {pct(a.get('reid_floor'))} (chance {pct(a.get('reid_chance'))})"
               if a.get("reid_floor") is not None else "")
            + (f", recognised {pct(a.get('recognition_floor'))} (originals {pct(a.get('recognition_originals'))})"
               if a.get("recognition_floor") is not None else ""))
    samples = f"attacker: {a.get('attacker_samples')} samples; scored on {a.get('eval_samples', '?')} held-out images"
    return [[text] + [""] * (width - 1), [samples] + [""] * (width - 1)]


def defense_table(rows: Iterable[SweepRow | Mapping]) -> Table:
    """Per cut and defense (the undefended baseline first): accuracy, and per precision the payload, head
    latency and the strongest attacker's PSNR / SSIM."""
    ok = [r for r in as_rows(rows) if r.ok]
    base_acc = next((r.fields["test_accuracy"] for r in ok if r.step == "train"), None)
    precs = list(dict.fromkeys(r.precision for r in ok if r.step == "export"))
    cells: dict[tuple[str, str | None], dict] = {}
    for r in ok:
        cell = cells.setdefault((r.cut, r.defense), {})
        if r.step == "defend":
            cell["acc"] = r.fields["test_accuracy"]
        elif r.step in ("export", "profile", "audit"):
            p = cell.setdefault(r.precision, {})
            if r.step == "export":
                p["bytes"] = r.fields["payload_bytes"]
            elif r.step == "profile" and "ms" not in p:
                p["ms"] = r.fields["latency_ms"]
            elif r.step == "audit":
                for k in ("psnr", "ssim", "reid_top1"):
                    if r.fields.get(k) is not None:
                        p[k] = max(p.get(k, -math.inf), r.fields[k])
    headers = ["cut", "defense", "test accuracy"]
    for p in precs:
        headers += [f"{p} bytes", f"{p} head ms", f"{p} PSNR", f"{p} SSIM", f"{p} re-id top-1"]
    table = []
    cuts = list(dict.fromkeys(k[0] for k in cells if k[0] and k[0] != "input"))
    for cut in cuts:
        for (c, d), cell in sorted(((k, v) for k, v in cells.items() if k[0] == cut),
                                   key=lambda kv: (kv[0][1] is not None, kv[0][1] or "")):
            line = [c, d or "none (baseline)", fmt(cell.get("acc", base_acc if d is None else None), 4)]
            for p in precs:
                v = cell.get(p, {})
                line += [fmt(v.get("bytes")), fmt(v.get("ms"), 3), fmt(v.get("psnr")), fmt(v.get("ssim"), 3),
                         pct(v.get("reid_top1"))]
            table.append(line)
    return headers, table


def plan_table(p: dict) -> Table:
    """Per bandwidth: the fastest option, and with a privacy bound the golden zone and the fastest inside it."""
    headers = ["bandwidth", "fastest option", "its latency ms"]
    bounded = bool(p["best_private"])
    if bounded:
        headers += ["golden zone (meets the privacy bound)", "best private option", "its latency ms"]
    table = []
    for bw in p["bandwidths_mbit"]:
        k = str(float(bw))
        best = p["best"][k]
        line = [f"{float(bw):g} Mbit/s", best["name"], fmt(best["e2e_ms"], 3)]
        if bounded:
            zone = golden_zone_text(p["golden_zone"][k]) or "none"
            bp = p["best_private"][k]
            line += [zone, bp["name"] if bp else "none", fmt(bp["e2e_ms"], 3) if bp else "–"]
        table.append(line)
    return headers, table


def problems_table(rows: list[SweepRow]) -> Table | None:
    """The skipped and failed steps, one line per distinct (status, step, backend, reason); None when none."""
    seen, lines = set(), []
    for r in rows:
        if r.status not in ("skipped", "failed"):
            continue
        key = (r.status, r.step, r.backend, r.reason)
        if key in seen:
            continue
        seen.add(key)
        lines.append([r.status, r.step, r.backend or "", r.reason or ""])
    return (["status", "step", "backend", "reason"], lines) if lines else None
