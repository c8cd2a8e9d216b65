"""Partition planning from sweep rows: end-to-end latency of every cut, the best cut per link, and the
golden partition zone under a privacy bound.

    end_to_end(cut, link) = head on the device + round trip + payload * 8 / bandwidth + tail on the server

Head latency comes from a measured profile (`backend@device`) or a roofline estimate (`estimate:PROFILE`,
labelled as such); the tail is measured on the host that ran the sweep (the server). Besides every cut,
the plan has the "input" option (send the 8-bit image, run the whole model on the server: head 0 ms,
nothing private kept) as in Neurosurgeon. Leakage per cut and precision is the strongest attacker the
sweep measured (highest PSNR / SSIM / re-identification / recognition rate over its decoders). The golden
partition zone is the set of options that meet the privacy bound (any of PSNR, SSIM, top-1
re-identification rate, recognition rate; and the latency bound, when one is given) at a bandwidth; the
best private cut is the fastest of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from edgesplit.bench.rows import SweepRow, as_rows
from edgesplit.errors import BenchError, closest
from edgesplit.vocab import PRECISIONS

Rows = Iterable[SweepRow | Mapping]  # typed rows, or the JSON objects read_results returns


@dataclass
class Option:
    cut: str
    precision: str
    head_ms: float
    payload_bytes: int
    tail_ms: float
    psnr: float | None  # strongest attacker; None when not audited; inf for the raw input
    ssim: float | None
    reid: float | None = None  # top-1 re-identification rate of the strongest attacker (1.0 for the raw input)
    recognition: float | None = None  # the evaluation classifier's accuracy on its reconstructions
    e2e_ms: dict[float, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "input (whole model on the server)" if self.cut == "input" else f"{self.cut} {self.precision}"

    def to_dict(self) -> dict:
        return {"cut": self.cut, "precision": self.precision, "head_ms": self.head_ms,
                "payload_bytes": self.payload_bytes, "tail_ms": self.tail_ms,
                "psnr": None if self.psnr is None or math.isinf(self.psnr) else self.psnr,
                "ssim": self.ssim, "reid": self.reid, "recognition": self.recognition,
                "e2e_ms": {str(k): v for k, v in self.e2e_ms.items()}}


LEAKAGE = {"psnr": "psnr", "ssim": "ssim", "reid": "reid_top1", "recognition": "recognition"}  # option <- row


def transfer_ms(payload_bytes: int, mbit_per_s: float) -> float:
    return payload_bytes * 8 / (mbit_per_s * 1e6) * 1e3


def head_sources(rows: Rows, model: str) -> list[str]:
    """The head-latency sources a sweep measured or estimated for `model`."""
    out = []
    for r in as_rows(rows):
        if r.model != model or not r.ok:
            continue
        if r.step == "profile":
            out.append(f"{r.backend}@{r.device}")
        elif r.step == "estimate":
            out.append(r.device)
    return list(dict.fromkeys(out))


def options_for(rows: Rows, model: str, source: str, defense: str | None = None) -> list[Option]:
    """The undefended model's options (or one defense's: its rows carry that `defense` label)."""
    rows = as_rows(rows)
    ok = [r for r in rows if r.model == model and r.ok and (r.defense == defense or r.step == "tail")]
    tails = {r.cut: r.fields for r in ok if r.step == "tail"}
    if "input" not in tails:
        raise BenchError(f"no server latency for {model} in these results: the sweep's tail steps did not run")
    leak: dict[tuple[str, str], dict[str, float | None]] = {}
    for r in ok:
        if r.step == "audit":  # the strongest attacker per figure, over the audit rows of this option
            cell = leak.setdefault((r.cut, r.precision), {})
            for name, key in LEAKAGE.items():
                if r.fields.get(key) is not None:
                    cell[name] = max(cell.get(name, -math.inf), r.fields[key])
    heads = {}
    for r in ok:
        if source.startswith("estimate:") and r.step == "estimate" and r.device == source:
            heads[(r.cut, r.precision)] = (r.fields["latency_ms"], r.fields["payload_bytes"])
        elif r.step == "profile" and f"{r.backend}@{r.device}" == source:
            heads[(r.cut, r.precision)] = (_batch1_p50(r.fields), r.fields["payload_bytes"])
    if not heads:
        raise BenchError(f"no head latencies from {source!r} for {model} "
                         f"({closest(source, head_sources(rows, model))})")
    full = tails["input"]
    options = [Option("input", "-", 0.0, int(full["payload_bytes"]), full["tail_ms"], math.inf, 1.0, 1.0, None)]
    for (cut, precision), (head_ms, payload) in sorted(heads.items(), key=lambda kv: _order(ok, kv[0][0])):
        if cut not in tails:
            continue
        cell = leak.get((cut, precision), {})
        options.append(Option(cut, precision, head_ms, int(payload), tails[cut]["tail_ms"], cell.get("psnr"),
                              cell.get("ssim"), cell.get("reid"), cell.get("recognition")))
    return options


def _batch1_p50(fields: dict) -> float:
    for m in fields.get("measurements", []):
        if m.get("batch") == 1:
            return m["latency_ms"]["p50"]
    return fields["latency_ms"] / max(1, fields.get("batch", 1))  # per-sample time at the smallest batch measured


def _order(rows: list[SweepRow], cut: str) -> int:
    for i, r in enumerate(r for r in rows if r.step == "tail"):
        if r.cut == cut:
            return i
    return 10 ** 6


def known_precisions(names) -> tuple[str, ...] | None:
    """Head precisions named by the user, lower-cased and checked: an unknown name (int4) is an error, never a
    filter that silently drops every cut and leaves the whole model on the server."""
    if names is None:
        return None
    out = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    unknown = [n for n in out if n not in PRECISIONS]
    if unknown or not out:
        raise BenchError(f"unknown precision {unknown[0] if unknown else '(none)'!r}: use a comma list of "
                         f"{', '.join(PRECISIONS)}")
    return out


def plan(rows: Rows, model: str | None = None, source: str | None = None,
         bandwidths_mbit=(1.0, 10.0, 100.0, 1000.0), rtt_ms: float = 0.0, max_psnr: float | None = None,
         max_ssim: float | None = None, max_latency_ms: float | None = None, defense: str | None = None,
         precisions: tuple[str, ...] | None = None, max_reid: float | None = None,
         max_recognition: float | None = None) -> dict:
    """The plan for one model and head source (defaults: the first model, its first measured source)."""
    rows = as_rows(rows)
    models = list(dict.fromkeys(r.model for r in rows if r.model))
    if not models:
        raise BenchError("these results hold no model rows: run 'edgesplit sweep' first")
    model = model or models[0]
    if model not in models:
        raise BenchError(f"no results for model {model!r} ({closest(model, models)})")
    sources = head_sources(rows, model)
    if not sources:
        raise BenchError(f"no profiled or estimated head latency for {model}: the sweep's profile steps all "
                         f"failed or were skipped")
    source = source or next((s for s in sources if not s.startswith("estimate:")), sources[0])
    if any(b <= 0 for b in bandwidths_mbit) or rtt_ms < 0:
        raise BenchError("bandwidths must be > 0 Mbit/s and the round trip >= 0 ms")
    bound = {"max_psnr": max_psnr, "max_ssim": max_ssim, "max_reid": max_reid, "max_recognition": max_recognition}
    precisions = known_precisions(precisions)
    options = [o for o in options_for(rows, model, source, defense)
               if precisions is None or o.cut == "input" or o.precision in precisions]
    audited = any(o.psnr is not None and o.cut != "input" for o in options)
    best, best_private, zone = {}, {}, {}
    for bw in bandwidths_mbit:
        for o in options:
            o.e2e_ms[bw] = o.head_ms + rtt_ms + transfer_ms(o.payload_bytes, bw) + o.tail_ms
        best[bw] = min(options, key=lambda o: o.e2e_ms[bw])
        inside = [o for o in options if _private(o, bound)
                  and (max_latency_ms is None or o.e2e_ms[bw] <= max_latency_ms)]
        zone[bw] = inside
        best_private[bw] = min(inside, key=lambda o: o.e2e_ms[bw]) if inside else None
    bounded = any(v is not None for v in bound.values())
    return {
        "model": model, "defense": defense, "head_source": source, "sources": sources,
        "precisions": list(precisions) if precisions else None,
        "head_kind": "estimate" if source.startswith("estimate:") else "measured",
        "rtt_ms": rtt_ms, "bandwidths_mbit": list(bandwidths_mbit),
        "privacy_bound": {**bound, "max_latency_ms": max_latency_ms},
        "audited": audited,
        "options": [o.to_dict() for o in options],
        "best": {str(bw): _pick(o, bw) for bw, o in best.items()},
        "golden_zone": {str(bw): [_pick(o, bw) for o in z] for bw, z in zone.items()} if bounded else {},
        "best_private": {str(bw): (_pick(o, bw) if o else None) for bw, o in best_private.items()} if bounded else {},
    }


def _private(o: Option, bound: dict) -> bool:
    """Inside the privacy bound: every bounded figure measured and at most its limit (unknown is never inside)."""
    limits = {name: bound[f"max_{name}"] for name in LEAKAGE if bound.get(f"max_{name}") is not None}
    if not limits:
        return False
    return all(getattr(o, name) is not None and getattr(o, name) <= limit for name, limit in limits.items())


def _pick(o: Option, bw: float) -> dict:
    return {"cut": o.cut, "precision": o.precision, "e2e_ms": o.e2e_ms[bw], "name": o.name}
