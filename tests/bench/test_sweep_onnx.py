"""Shipped ONNX models in sweeps (issue 15): `[[sweep.models]] onnx = "model.onnx"`, and export-once sweeps.

One briefly trained classifier4 (1x32x32, digits) is swept four ways: from PyTorch with the whole model
exported once (A) and with a head exported per cut (B); from the ONNX file sweep A wrote (C); from a plain
`torch.onnx.export` of the same checkpoint (D). C's heads must be A's, bit for bit; D's within 1e-6; B's
fidelity figures A's. A small audited sweep of the plain export (E) runs emit and the adaptive audit on heads
cut from the file, and records the torch backends as skipped. Then every bad ONNX entry: one line, no rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgesplit.bench import load_spec, read_results, run_sweep, spec_from_dict
from edgesplit.bench.sweep_onnx import file_name
from edgesplit.errors import BenchError, EdgesplitError
from tests.models.onnx_files import with_dynamic_hw

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (1, 32, 32)
CUTS = ["features.0", "features.1", "features.2", "features.3", "fc.1"]  # classifier4's block cuts
QUICK = {"profile": {"warmup": 1, "iters": 3, "min_seconds": 0}, "data": {"calib_size": 32}}


def _spec(model: dict, precisions=("fp32",), **sweep) -> dict:
    return {"sweep": {"models": [model], "precisions": list(precisions), "audit": False, **sweep}, **QUICK}


def _exports(results: Path) -> dict:
    return {(r["cut"], r["precision"]): r for r in read_results(results) if r["step"] == "export"}


def _head(out: Path, row: dict, x: np.ndarray) -> tuple[onnx.ModelProto, np.ndarray]:
    model = onnx.load(str(out / row["bundle"] / "head.onnx"))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return model, session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The checkpoint (trained on 512 digits for 1 epoch: top-1 well above chance) and its plain export."""
    import torch

    from edgesplit.data import load_dataset
    from edgesplit.models import create_model, save_checkpoint, train_classifier
    from edgesplit.models.training import TrainConfig

    folder = tmp_path_factory.mktemp("onnx-sweep")
    common = dict(img_size=32, channels=1, seed=0)
    train = load_dataset("digits", split="train", limit=512, **common)
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0)
    train_classifier(model, train, None, TrainConfig(epochs=1, seed=0))
    checkpoint = save_checkpoint(model, folder / "c4.pt")
    plain = folder / "plain" / "c4.onnx"
    plain.parent.mkdir()
    model.eval()
    with warnings.catch_warnings(), open(os.devnull, "w") as sink:
        warnings.simplefilter("ignore")
        stdout, sys.stdout = sys.stdout, sink  # the exporter's progress lines
        try:
            torch.onnx.export(model, (torch.zeros(1, *SHAPE),), str(plain), input_names=["image"],
                              dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, dynamo=True)
        finally:
            sys.stdout = stdout
    return folder, checkpoint, plain


@pytest.fixture(scope="module")
def torch_sweep(work):
    """A: the PyTorch model, exported once, every block cut x fp32/int8."""
    folder, checkpoint, _ = work
    out = folder / "A"
    spec = spec_from_dict(_spec({"name": "classifier4", "input": "1x32x32", "checkpoint": str(checkpoint)},
                                precisions=("fp32", "int8"), int8_scope="all"))  # B compares: a fixed INT8 graph
    return out, run_sweep(spec, out)


def test_export_once_and_per_cut_heads_have_the_same_fidelity(work, torch_sweep):
    folder, checkpoint, _ = work
    out_a, results_a = torch_sweep
    out_b = folder / "B"
    spec = spec_from_dict(_spec({"name": "classifier4", "input": "1x32x32", "checkpoint": str(checkpoint),
                                 "cuts": ["features.1", "fc.1"]}, precisions=("fp32", "int8"), int8_scope="all"))
    a, b = _exports(results_a), _exports(run_sweep(spec, out_b, export_once=False))
    assert {r["head_from"] for r in a.values()} == {"whole-model graph"}
    assert {r["head_from"] for r in b.values()} == {"per-cut export"}
    assert len(b) == 4 and set(b) <= set(a)
    for key, row in b.items():
        fa, fb = a[key]["fidelity"], row["fidelity"]
        assert abs(fa["mean_cosine"] - fb["mean_cosine"]) <= 1e-5, key
        assert abs(fa["max_abs_error"] - fb["max_abs_error"]) <= 1e-5, key
        assert fa["tail_top1_exported_features"] == fb["tail_top1_exported_features"], key
        assert fa["tail_top1_fp32_features"] == fb["tail_top1_fp32_features"], key
    assert a[("fc.1", "fp32")]["fidelity"]["tail_top1_fp32_features"] > 0.3, "a trained model, not chance"


def test_the_file_a_sweep_exported_sweeps_to_bit_identical_heads(torch_sweep):
    out_a, results_a = torch_sweep
    graph = out_a / "graphs" / "classifier4-1x32x32.onnx"
    out_c = out_a.parent / "C"
    spec = spec_from_dict(_spec({"onnx": str(graph), "name": "shipped", "cuts": CUTS}))
    results_c = run_sweep(spec, out_c)
    a, c = _exports(results_a), _exports(results_c)
    assert sorted(c) == sorted((cut, "fp32") for cut in CUTS)
    x = np.random.default_rng(1).random((8, *SHAPE), dtype=np.float32)
    for key, row in c.items():
        ref = a[key]
        assert row["model"] == "shipped" and row["head_from"] == "shipped onnx file"
        assert row["feature_shape"] == ref["feature_shape"] and row["payload_bytes"] == ref["payload_bytes"]
        assert row["macs"] == ref["macs"]
        model_a, y_a = _head(out_a, ref, x)
        model_c, y_c = _head(out_c, row, x)
        assert model_a.graph.SerializeToString() == model_c.graph.SerializeToString(), key
        assert np.array_equal(y_a, y_c), key
        assert row["fidelity"] == ref["fidelity"], key
    tails = [r for r in read_results(results_c) if r["step"] == "tail"]
    assert [r["cut"] for r in tails] == ["input", *CUTS] and {r["status"] for r in tails} == {"ok"}
    assert {r["runtime"] for r in tails} == {"onnxruntime fp32"} and tails[0]["payload_bytes"] == 32 * 32


def test_a_plain_torch_onnx_export_sweeps_to_the_same_cuts(work, torch_sweep):
    from edgesplit.models.onnx_cuts import analyse_onnx

    folder, _, plain = work
    out_a, results_a = torch_sweep
    a = _exports(results_a)
    blocks = analyse_onnx(plain).blocks
    tensors = []  # the ONNX block each PyTorch cut is: same shape, MACs within 1 % (a PyTorch block is a
    for cut in CUTS:  # subsequence of the ONNX ones: conv+BN and maxpool+relu are two ONNX blocks)
        ref = a[(cut, "fp32")]
        same = [b for b in blocks if list(b.shape) == ref["feature_shape"] and abs(b.macs - ref["macs"]) <= 0.01 * ref["macs"]]
        assert same, f"no ONNX block for {cut}"
        tensors.append(same[-1].name)
    out_d = folder / "D"
    d = _exports(run_sweep(spec_from_dict(_spec({"onnx": str(plain), "cuts": tensors})), out_d))
    assert len(d) == len(CUTS)
    x = np.random.default_rng(2).random((8, *SHAPE), dtype=np.float32)
    for cut, tensor in zip(CUTS, tensors, strict=True):
        ref, row = a[(cut, "fp32")], d[(tensor, "fp32")]
        assert row["model"] == "c4" and row["payload_bytes"] == ref["payload_bytes"]
        assert row["feature_shape"] == ref["feature_shape"] and abs(row["macs"] - ref["macs"]) <= 0.01 * ref["macs"]
        y_a, y_d = _head(out_a, ref, x)[1], _head(out_d, row, x)[1]
        assert np.abs(y_a - y_d).max() <= 1e-6, cut
        assert row["fidelity"]["tail_top1_fp32_features"] == ref["fidelity"]["tail_top1_fp32_features"], cut


def test_an_onnx_sweep_emits_audits_and_skips_the_torch_backends(work):
    folder, _, plain = work
    out = folder / "E"
    raw = _spec({"onnx": str(plain), "name": "c4", "cuts": ["relu_3"]}, precisions=("fp32", "int8"),
                audit=True, backends=["ort", "torch"], decoders=["deconv"], estimate=["raspberry-pi-5-8gb"])
    raw["attack"] = {"epochs": 1, "attack_limit": 64, "eval_limit": 16, "learning_curve": False}
    spec = spec_from_dict(raw)
    results = run_sweep(spec, out)
    rows = read_results(results)
    by = {}
    for r in rows:
        by.setdefault((r["step"], r["status"]), []).append(r)
    assert not [r for r in rows if r["status"] == "failed"], [r.get("reason") for r in rows]
    assert len(by[("export", "ok")]) == 2 and len(by[("emit", "ok")]) == 2 and len(by[("audit", "ok")]) == 2
    assert len(by[("estimate", "ok")]) == 2 and len(by[("tail", "ok")]) == 2
    skipped = by[("profile", "skipped")]
    assert {r["backend"] for r in skipped} == {"torch"} and all("shipped ONNX" in r["reason"] for r in skipped)
    int8 = next(r for r in by[("audit", "ok")] if r["precision"] == "int8")
    assert "transfer_psnr" in int8, "the fp32 decoder attacks the int8 wire too"
    manifest = json.loads((out / by[("export", "ok")][0]["bundle"] / "manifest.json").read_text())
    assert manifest["model"]["graph"]["cut_tensor"] == "relu_3" and manifest["model"]["spec"] is None
    assert len(read_results(run_sweep(spec, out))) == len(rows), "a second run redoes nothing"
    export = by[("export", "ok")][0]  # a new file, or new weights beside it, redo every step of the model
    assert set(export["inputs"]) == {"onnx", "onnx data c4.onnx.data"}
    (plain.parent / "c4.onnx.data").touch()  # the file changed (its sha256): every step that read it is redone
    data = (plain.parent / "c4.onnx.data").read_bytes()
    assert data, "the plain export keeps its weights beside it"


# --- the spec ------------------------------------------------------------------------------------------


def test_a_spec_without_onnx_entries_hashes_as_before(tmp_path, monkeypatch, work):
    raw = {"sweep": {"precisions": ["fp32", "int8"], "audit": False,
                     "models": [{"name": "classifier4", "input": "1x32x32", "cuts": ["stem", "block1"]},
                                {"name": "resnet18", "input": "3x64x64", "train_epochs": 2}]},
           "data": {"name": "digits", "calib_size": 64}, "profile": {"warmup": 2, "iters": 5, "min_seconds": 0}}
    # computed by the code before ONNX entries existed (commit 08fa3bb)
    assert spec_from_dict(raw).sha256 == "bde2325e220c35b5d2d1cca52e548501e94ba8d4fce681b95e5944038776c668"
    assert spec_from_dict({"sweep": {"models": [{"name": "classifier4"}]}}).sha256 == \
        "0f48048cb8e25f15277a8f1165fcb90fa978bfee0ed828e71ccd44bf0f7335da"
    assert all("onnx" not in m and "spec_dir" not in m for m in spec_from_dict(raw).to_dict()["models"])
    # an ONNX entry: read from the spec file's folder, named after the file, hashed as written
    _, _, plain = work
    (tmp_path / "s.toml").write_text(f'[[sweep.models]]\nonnx = "{os.path.relpath(plain, tmp_path)}"\n')
    monkeypatch.chdir(ROOT)
    spec = load_spec(tmp_path / "s.toml")
    entry = spec.models[0]
    assert entry.name == "c4" and entry.onnx_path.resolve() == plain.resolve() and entry.input is None
    assert spec.to_dict()["models"][0]["onnx"] == os.path.relpath(plain, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert load_spec("s.toml").sha256 == spec.sha256, "where the sweep runs from does not change the spec"


def test_file_names_of_tensor_cuts():
    assert file_name("features.1") == "features.1" and file_name("relu_3") == "relu_3"
    odd = file_name("/layer1/Relu_output_0")
    assert "/" not in odd and odd.startswith("layer1_Relu_output_0-") and odd != file_name("layer1_Relu_output_0")


# --- bad input: one line each, before any step, nothing written -------------------------------------


def _fixed_batch(plain: Path, folder: Path) -> Path:
    model = onnx.load(str(plain))
    model.graph.input[0].type.tensor_type.shape.dim[0].Clear()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    path = folder / "fixed_batch.onnx"
    onnx.save(model, str(path))
    return path


def test_bad_onnx_entries_are_one_line_and_write_no_rows(work, tmp_path):
    _, _, plain = work
    plain_s = str(plain)
    spec_errors = [
        ({"onnx": plain_s, "train_epochs": 3}, "c4: train_epochs does not apply to an ONNX model"),
        ({"onnx": plain_s, "train_epochs": 0}, "train_epochs does not apply"),
        ({"onnx": plain_s, "checkpoint": "c4.pt"}, "c4: checkpoint does not apply to an ONNX model"),
        ({"onnx": str(tmp_path / "missing.onnx")}, "missing.onnx is not a file"),
        ({"onnx": str(tmp_path / "model.pt")}, "does not name an .onnx file"),
        ({"onnx": 3}, "onnx must be a string"),
    ]
    for entry, message in spec_errors:
        with pytest.raises(BenchError, match=message) as info:
            spec_from_dict({"sweep": {"models": [entry]}})
        assert "\n" not in str(info.value)
    with pytest.raises(BenchError, match=r"\[sweep\] defenses do not apply to ONNX model c4") as info:
        spec_from_dict({"sweep": {"models": [{"onnx": plain_s}], "defenses": ["noise"]}})
    assert "\n" not in str(info.value)
    dynamic = with_dynamic_hw(plain, tmp_path)
    sweep_errors = [
        ({"onnx": plain_s, "cuts": ["relu_1", "relu_9"]}, "model c4: 'relu_9' is not a tensor of"),
        ({"onnx": plain_s, "cuts": ["getitem_3", "max_pool2d"]}, None),  # legal: the control
        ({"onnx": str(dynamic)}, "dynamic dims .*set input = CxHxW"),
        ({"onnx": str(dynamic), "input": "3x32x32"}, "input 'image' is .*x1x.*, not 3x32x32"),
        ({"onnx": str(_fixed_batch(plain, tmp_path))}, "takes batches of exactly 1"),
    ]
    for i, (entry, message) in enumerate(sweep_errors):
        out = tmp_path / f"out{i}"
        spec = spec_from_dict(_spec(entry))
        if message is None:
            from edgesplit.bench.sweep_onnx import resolve_onnx

            assert resolve_onnx(spec.models[0])[1] == entry["cuts"]
            continue
        with pytest.raises(EdgesplitError, match=message) as info:
            run_sweep(spec, out)
        assert "\n" not in str(info.value)
        assert not (out / "results.jsonl").exists() and not (out / "bundles").exists()
    from edgesplit.bench.sweep_onnx import resolve_onnx

    spec = spec_from_dict(_spec({"onnx": str(dynamic), "input": "1x32x32", "cuts": ["relu_3"]}))
    assert resolve_onnx(spec.models[0])[0].input_shape == SHAPE, "input fixes the file's dynamic H/W"


def test_the_command_line_stops_a_bad_onnx_sweep_with_exit_2(work, tmp_path):
    _, _, plain = work
    (tmp_path / "spec.toml").write_text(f'[sweep]\naudit = false\n[[sweep.models]]\nonnx = "{plain}"\n'
                                        f'cuts = ["relu_1", "nope"]\n')
    done = subprocess.run([sys.executable, "-m", "edgesplit.cli.main", "sweep", str(tmp_path / "spec.toml"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'nope' is not a tensor" in lines[0]
    assert not (tmp_path / "out" / "results.jsonl").exists()
