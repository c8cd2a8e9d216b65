"""The partition planner: different cuts for slow and fast links, the golden zone by each bound, bad input."""

import pytest

from edgesplit.bench.plan import plan
from edgesplit.errors import BenchError
from tests.bench.helpers import _rows


def test_plan_picks_different_cuts_for_slow_and_fast_links_and_marks_the_golden_zone():
    p = plan(_rows(), bandwidths_mbit=(1.0, 1000.0), rtt_ms=5.0, max_psnr=20.0)
    assert p["best"]["1.0"]["cut"] == "c", "a slow link favours the cut that sends least"
    assert p["best"]["1000.0"]["cut"] == "input", "a fast link favours the fast server"
    assert [z["cut"] for z in p["golden_zone"]["1000.0"]] == ["b", "c"], "cuts leaking at most 20 dB"
    assert p["best_private"]["1000.0"]["cut"] == "b"
    input_option = p["options"][0]
    assert input_option["e2e_ms"]["1.0"] == pytest.approx(5.0 + 40000 * 8 / 1e6 * 1e3 + 2.0)


def test_golden_zone_by_recognisability():
    rows = _rows()
    for r, (reid, rec) in zip((r for r in rows if r["step"] == "audit"), [(0.9, 0.8), (0.2, 0.5), (0.01, 0.1)],
                              strict=True):
        r.update(reid_top1=reid, recognition=rec)
    p = plan(rows, bandwidths_mbit=(1000.0,), max_reid=0.05)
    assert [z["cut"] for z in p["golden_zone"]["1000.0"]] == ["c"] and p["privacy_bound"]["max_reid"] == 0.05
    both = plan(rows, bandwidths_mbit=(1000.0,), max_reid=0.3, max_recognition=0.4)
    assert [z["cut"] for z in both["golden_zone"]["1000.0"]] == ["c"], "every bound must hold"
    assert [z["cut"] for z in plan(rows, bandwidths_mbit=(1000.0,), max_reid=0.3)["golden_zone"]["1000.0"]] == ["b", "c"]
    no_rates = plan(_rows(), bandwidths_mbit=(1000.0,), max_reid=0.5)
    assert no_rates["golden_zone"]["1000.0"] == [], "audits without a re-identification rate are never inside"


def test_plan_bad_input():
    rows = _rows()
    with pytest.raises(BenchError, match="no results for model 'n'"):
        plan(rows, model="n")
    with pytest.raises(BenchError, match="no head latencies from 'ort@board'"):
        plan(rows, source="ort@board")
    with pytest.raises(BenchError, match="bandwidths must be > 0"):
        plan(rows, bandwidths_mbit=(0.0,))
    only_fp32 = plan(rows, precisions=("fp32",))
    assert [o["cut"] for o in only_fp32["options"]] == ["input"], "the int8 heads are filtered out"
    for wrong in (("int4",), ("int8", "fp64"), ()):  # once: every cut dropped, the whole model on the server, exit 0
        with pytest.raises(BenchError, match="unknown precision .*: use a comma list of fp32, fp16, int8"):
            plan(rows, precisions=wrong)
    upper = plan(rows, precisions=("INT8",))
    assert upper["precisions"] == ["int8"] and len(upper["options"]) > 1, "names are case-insensitive"
    unaudited = [r for r in rows if r["step"] != "audit"]
    p = plan(unaudited, max_psnr=100.0)
    assert not p["audited"] and all(not z for z in p["golden_zone"].values()), "unknown leakage is never private"
