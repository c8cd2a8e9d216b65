"""`edgesplit estimate`: roofline rows labelled as estimates, never mixed with measured rows."""

import pytest

from edgesplit.errors import BackendError
from edgesplit.runtime.profile import profile_bundle
from edgesplit.runtime.results import append_row, read_rows
from tests.runtime.helpers import FAST


def test_estimates_are_labelled_and_never_mixed_with_measurements(bundles, tmp_path, capsys):
    from edgesplit.bench.cut_estimates import estimate_cuts
    from edgesplit.cli.main import main
    from edgesplit.devices.boards import get_board

    rows = estimate_cuts("resnet18", (3, 64, 64), "jetson-orin-nano-8gb", ["fp16", "int8"])
    assert rows and all(r["kind"] == "estimate" for r in rows)
    layer2 = {r["precision"]: r for r in rows if r["cut"] == "layer2.1"}
    peak16 = get_board("jetson-orin-nano-8gb").peak_tflops["fp16"] * 1e12 * 0.5
    assert layer2["fp16"]["compute_s"] == pytest.approx(2 * layer2["fp16"]["macs"] / peak16)
    assert layer2["int8"]["seconds"] < layer2["fp16"]["seconds"]
    measured = tmp_path / "measured.jsonl"
    profile_bundle(bundles["c4"].path, "ort", [1], FAST, on_row=lambda r: append_row(measured, r))
    with pytest.raises(BackendError, match="holds measured rows; a estimate row does not belong"):
        append_row(measured, rows[0])
    assert main(["estimate", "classifier4", "--input", "1x32x32", "--device-profile", "raspberry-pi-5-8gb",
                 "--out", str(tmp_path / "est.jsonl")]) == 0
    assert capsys.readouterr().out.startswith("ESTIMATE (roofline")
    assert {r["kind"] for r in read_rows(tmp_path / "est.jsonl")} == {"estimate"}
    assert main(["estimate", "classifier4", "--device-profile", "orin-nono"]) == 2
    assert "closest" in capsys.readouterr().err
