"""The report: results readable by pandas and exported as CSV, a self-contained HTML page whose every image
decodes (and renders in headless Chromium where installed), and the Pareto plot's golden-zone band."""

import base64
import shutil
import subprocess
from html.parser import HTMLParser
from io import BytesIO

import pytest

from edgesplit.bench import read_results
from edgesplit.bench.plan import plan
from edgesplit.bench.report import write_report
from tests.bench.helpers import _rows


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))


def test_results_are_readable_by_pandas_and_exported_as_csv(sweep, tmp_path):
    pd = pytest.importorskip("pandas")
    _, _, results = sweep
    frame = pd.read_json(results, lines=True)
    assert {"step", "status", "cut", "precision", "latency_ms", "psnr"} <= set(frame.columns)
    from edgesplit.bench.report import write_csv

    table = pd.read_csv(write_csv(read_results(results), tmp_path / "r.csv"))
    assert len(table) == len(read_results(results)) <= len(frame), "the current rows (a redone step's latest)"
    assert table["psnr"].notna().sum() == 4
    exports = table[table["step"] == "export"]
    assert exports["test_accuracy"].notna().all() and exports["test_accuracy"].between(0, 1).all()
    assert table["reid_top1"].notna().sum() == 4 and table["recognition"].notna().sum() == 4


def test_report_is_self_contained_and_every_image_decodes(sweep, tmp_path):
    from PIL import Image

    _, _, results = sweep
    paths = write_report(results, tmp_path / "report", max_psnr=30.0)
    page = paths["html"].read_text()
    parser = _Images()
    parser.feed(page)
    # five plots + one reconstruction grid per audit (2 cuts x 2 precisions), each also under figures/
    assert len(parser.images) == 5 + 4 and "table" in parser.tags
    assert sorted(p.name for p in (tmp_path / "report" / "figures").glob("*-grid-*.png")) == [
        "classifier4-grid-features.1-fp32-deconv.png", "classifier4-grid-features.1-int8-deconv.png",
        "classifier4-grid-features.3-fp32-deconv.png", "classifier4-grid-features.3-int8-deconv.png"]
    for img in parser.images:
        assert img["src"].startswith("data:image/png;base64,"), "images are embedded, not linked"
        with Image.open(BytesIO(base64.b64decode(img["src"].split(",", 1)[1]))) as im:
            im.verify()
            assert im.size[0] > 200
    assert "src=\"http" not in page and "golden zone" in page and "Skipped and failed" in page
    md = paths["markdown"].read_text()
    assert "| features.1 |" in md and "### Partition plan" in md
    assert "floor (the attacker's mean image): PSNR" in md and "re-id top-1" in md and "attacker: 64 samples" in md
    assert "int8 top-1 acc" in md, "the INT8 accuracy check of the export shows in the report"
    assert "int8 speed-up all / auto" in md, "the INT8 speed-ups of both scopes, measured at export"


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="headless Chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(sweep, tmp_path):
    from PIL import Image

    _, _, results = sweep
    paths = write_report(results, tmp_path / "report", max_psnr=30.0)
    shot = tmp_path / "shot.png"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1200,3000", paths["html"].resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as im:
        colours = im.convert("L").getextrema()
    assert colours[0] < 100 < colours[1], "the page rendered content, not a blank screen"


def test_pareto_plot_draws_the_zone_below_the_bound(monkeypatch):
    from edgesplit.bench import report_figures

    spans, steps = [], []
    real = report_figures.figure

    def spy(*a, **k):
        plt, fig, ax = real(*a, **k)
        monkeypatch.setattr(ax, "axhspan", lambda lo, hi, **kw: spans.append((lo, hi)))
        monkeypatch.setattr(ax, "step", lambda *a, **kw: steps.append(kw.get("label")))
        return plt, fig, ax

    monkeypatch.setattr(report_figures, "figure", spy)
    p = plan(_rows(), bandwidths_mbit=(1.0, 1000.0), max_psnr=10.0)  # every cut leaks more than 10 dB
    assert report_figures.plot_pareto(p, (1.0, 1000.0)) is not None
    lo, hi = spans[0]
    assert hi == 10.0 and lo <= 10.0, "the band lies at and below the bound, never above it"
    rows = [r for r in _rows() if r.get("cut") in ("input", "c")]
    report_figures.plot_pareto(plan(rows, bandwidths_mbit=(1.0,), max_psnr=20.0), (1.0,))
    assert len(steps) == 1, "one point is no front: only the 3-cut plan drew a line"


def test_the_int8_column_shows_the_speed_up_of_all_and_of_auto():
    from edgesplit.bench.report_tables import summary_table
    from edgesplit.bench.rows import SweepRow

    def export(cut, precision, **fields):
        return SweepRow("export", "c4", cut, precision, status="ok", fields={"payload_bytes": 64, **fields})

    rows = [SweepRow("tail", "c4", cut, status="ok", fields={"tail_ms": 1.0}) for cut in ("a", "b")]
    rows += [export("a", "fp32"), export("b", "fp32"),
             export("a", "int8", int8_scope={"asked": "auto", "chosen": "none"},
                    int8_speedup={"all": 0.42, "auto": 1.0}),
             export("b", "int8", int8_scope={"asked": "auto", "chosen": "partial"},
                    int8_speedup={"all": 1.2, "auto": 1.5})]
    headers, lines = summary_table(rows)
    column = headers.index("int8 speed-up all / auto")
    assert headers[column - 7] == "int8 bytes", "with the int8 columns"
    assert [line[column] for line in lines] == ["0.42× / 1.00× (none)", "1.20× / 1.50× (partial)"]
    headers, _ = summary_table([r for r in rows if "int8_speedup" not in r.fields])
    assert "int8 speed-up all / auto" not in headers, "no column where no export measured it"
