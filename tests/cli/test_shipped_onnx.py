"""The CLI half of issue 15: `edgesplit cuts | export | audit` on a shipped ONNX file.

The shipped files are written by plain `torch.onnx.export`, outside edgesplit: classifier4 at 1x32x32 by the
default (dynamo) exporter, which keeps the weights in an external data file, and resnet18 at 32 px by the
legacy TorchScript one (residual blocks; '/layer1/layer1.0/...' tensor names). Every command runs in-process
through `edgesplit.cli.main.main`, as a user's shell would run it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgesplit.cli.common import human
from edgesplit.cli.main import main
from edgesplit.models.onnx_cuts import analyse_onnx
from tests.models.onnx_files import with_dynamic_hw

pytestmark = [  # the TorchScript exporter's deprecation notices, and nothing else
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning"),
]
R18_INSIDE = "/layer1/layer1.0/relu/Relu_output_0"  # inside layer1.0: the stem's relu crosses beside it
R18_BLOCK = "/layer2/layer2.0/relu_1/Relu_output_0"  # after layer2.0's residual join


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    import torch

    from edgesplit.models import create_model

    folder = tmp_path_factory.mktemp("shipped")
    c4 = folder / "classifier4.onnx"
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32).eval()
    torch.onnx.export(model, (torch.randn(2, 1, 32, 32),), str(c4), dynamic_shapes=({0: torch.export.Dim("batch")},))
    r18 = folder / "resnet18.onnx"
    model = create_model("resnet18", num_classes=10, img_size=32).eval()
    torch.onnx.export(model, (torch.randn(2, 3, 32, 32),), str(r18), dynamo=False, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    assert Path(f"{c4}.data").is_file()  # the default exporter writes external data
    return SimpleNamespace(c4=c4, r18=r18, folder=folder)


@pytest.fixture(scope="module")
def bad(shipped, tmp_path_factory):
    """Broken shipped files: not ONNX, no external data beside it, dynamic height and width."""
    folder = tmp_path_factory.mktemp("bad")
    garbage = folder / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf \x00\xff" * 8)
    alone = folder / "classifier4.onnx"  # its classifier4.onnx.data stays behind
    shutil.copy(shipped.c4, alone)
    return SimpleNamespace(garbage=garbage, alone=alone, dynamic=with_dynamic_hw(shipped.r18, folder),
                           missing=folder / "missing.onnx")


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_to(path: Path, tensor: str, x: np.ndarray) -> np.ndarray:
    """onnxruntime running the original file (external data and all) up to `tensor`: an extra graph output."""
    model = onnx.load(str(path))
    model.graph.output.add().name = tensor
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([tensor], {session.get_inputs()[0].name: x})[0]


# --- edgesplit cuts model.onnx -------------------------------------------------------------------------------

@pytest.mark.parametrize("granularity", ["block", "layer"])
def test_cuts_table_and_json_are_the_library_analysis(shipped, capsys, granularity):
    a = analyse_onnx(shipped.c4)
    cuts = a.all(granularity)
    code, out, err = cli(capsys, "cuts", shipped.c4, "--json", "--granularity", granularity)
    assert code == 0 and err == ""
    assert json.loads(out) == {"model": str(shipped.c4), "input": [1, 32, 32], "granularity": granularity,
                               "total_params": a.total_params, "total_macs": a.total_macs,
                               "cuts": [c.to_dict() for c in cuts]}
    code, out, _ = cli(capsys, "cuts", shipped.c4, "--granularity", granularity)
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"{shipped.c4} at 1x32x32, {granularity} cuts ({len(cuts)}):"
    assert lines[1].split() == ["cut", "shape", "head", "params", "head", "MACs", "fp32", "B", "fp16", "B", "int8", "B"]
    rows = [line.split() for line in lines[3:3 + len(cuts)]]
    assert rows == [[c.name, "x".join(map(str, c.shape)), human(c.params), human(c.macs),
                     *(str(c.payload_bytes[p]) for p in ("fp32", "fp16", "int8"))] for c in cuts]
    assert lines[-1] == (f"whole model: {human(a.total_params)} params, {human(a.total_macs)} MACs, "
                         f"input {32 * 32 * 4} B as fp32")


@pytest.mark.parametrize("name, input_shape", [("classifier4", "1x32x32"), ("resnet18", "3x32x32")])
def test_pytorch_block_cuts_are_among_the_onnx_cuts(shipped, capsys, name, input_shape):
    code, out, _ = cli(capsys, "cuts", name, "--input", input_shape, "--json")
    assert code == 0
    pytorch = json.loads(out)["cuts"]
    code, out, _ = cli(capsys, "cuts", shipped.c4 if name == "classifier4" else shipped.r18, "--json")
    assert code == 0
    listed = json.loads(out)
    assert listed["input"] == [int(d) for d in input_shape.split("x")]
    k = 0
    for t in pytorch:  # in order: each PyTorch block is an ONNX block of the same shape and head MACs (1 %)
        while k < len(listed["cuts"]) and not (listed["cuts"][k]["shape"] == t["shape"]
                                               and abs(listed["cuts"][k]["macs"] - t["macs"]) <= 0.01 * t["macs"]):
            k += 1
        assert k < len(listed["cuts"]), f"no ONNX block cut for {name}'s {t['name']} {t['shape']} {t['macs']}"
        k += 1
    if name == "resnet18":
        assert len(listed["cuts"]) == len(pytorch) == 10


def test_cuts_one_onnx_cut_splits_exactly(shipped, capsys):
    a = analyse_onnx(shipped.r18)
    code, out, err = cli(capsys, "cuts", shipped.r18, "--cut", R18_BLOCK, "--json")
    assert code == 0 and err == ""
    record = json.loads(out)
    assert record["name"] == R18_BLOCK and record["shape"] == [128, 16, 16]
    assert record["split_exact"] is True and record["split_max_abs_error"] == 0.0
    assert record["macs"] + record["tail_macs"] == a.total_macs
    code, out, _ = cli(capsys, "cuts", shipped.r18, "--input", "3x32x32", "--cut", R18_BLOCK)
    assert code == 0 and "split_exact          True" in out


def test_help_teaches_onnx_files(capsys):
    for command in ("cuts", "export", "audit"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert ".onnx" in out, command
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    assert "--model-onnx" in capsys.readouterr().out


# --- edgesplit export model.onnx -----------------------------------------------------------------------------

@pytest.mark.parametrize("which, cut", [("c4", "relu_1"), ("r18", R18_BLOCK)])
def test_export_fp32_bundle_is_the_original_model_up_to_the_tensor(shipped, capsys, tmp_path, which, cut):
    path = getattr(shipped, which)
    out = tmp_path / "bundle"
    code, printed, err = cli(capsys, "export", path, "--cut", cut, "--precision", "fp32", "--eval-size", "64",
                             "--out", out, "--quiet")
    assert code == 0 and err == "", err
    assert printed.startswith(f"wrote {out}: onnx:{path.stem} head up to {cut} at fp32")
    assert cli(capsys, "bundle", "verify", out)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["name"] == f"onnx:{path.stem}" and manifest["model"]["spec"] is None
    data = {p.name: _sha256(p) for p in path.parent.glob(f"{path.name}.*")}  # external data beside the file
    assert manifest["model"]["graph"] == {"file": path.name, "sha256": _sha256(path), "cut_tensor": cut,
                                          "external_data": data}
    assert manifest["cut"]["name"] == cut and manifest["precision"] == "fp32"
    channels = 1 if which == "c4" else 3
    x = np.random.default_rng(0).random((3, channels, 32, 32), dtype=np.float32)
    head = ort.InferenceSession(str(out / "head.onnx"), providers=["CPUExecutionProvider"])
    got = head.run(None, {manifest["input"]["name"]: x})[0]
    expected = _run_to(path, cut, x)
    assert got.shape == expected.shape == (3, *manifest["cut"]["shape"])
    assert np.abs(got - expected).max() <= 1e-5
    fidelity = manifest["fidelity"]
    assert fidelity["max_abs_error"] <= 1e-5
    assert fidelity["tail_top1_exported_features"] == fidelity["tail_top1_fp32_features"]


def test_export_int8_bundle(shipped, capsys, tmp_path):
    out = tmp_path / "int8"
    code, printed, err = cli(capsys, "export", shipped.c4, "--cut", "relu_1", "--precision", "int8",
                             "--calib-size", "64", "--eval-size", "64", "--out", out, "--quiet")
    assert code == 0 and err == "", err
    assert cli(capsys, "bundle", "verify", out)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "int8" and manifest["wire"]["format"] == "int8"
    assert manifest["wire"]["bytes_per_sample"] == 128 * 8 * 8
    assert manifest["model"]["graph"]["cut_tensor"] == "relu_1"
    assert manifest["fidelity"]["mean_cosine"] > 0.99


# --- edgesplit audit --model-onnx ----------------------------------------------------------------------------

TINY = ("--data", "digits", "--epochs", "2", "--attack-limit", "64", "--eval-limit", "32", "--decoder", "deconv",
        "--no-learning-curve", "--quiet")


def test_audit_model_onnx_end_to_end(shipped, capsys, tmp_path):
    out = tmp_path / "audit"
    code, printed, err = cli(capsys, "audit", "--model-onnx", shipped.c4, "--cut", "relu_1", "--precisions", "int8",
                             *TINY, "--out", out)
    assert code == 0 and err == "", err
    assert "attacked by one holding only the shipped file" in printed
    records = {}
    for precision in ("fp32", "int8"):  # fp32 always: the transfer attacker trains on it
        unit = out / precision
        assert cli(capsys, "bundle", "verify", unit / "bundle")[0] == 0
        assert (unit / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        records[precision] = record = json.loads((unit / "audit.json").read_text())
        assert record["model"] == "onnx:classifier4" and record["cut"] == "relu_1"
        assert record["precision"] == precision and record["wire"] == precision
        holds = record["threat_model"]["attacker_holds"]
        assert holds["file"] == "classifier4.onnx" and holds["sha256"] == _sha256(shipped.c4)
        assert holds["what"].startswith("only the shipped ONNX file")
        assert record["threat_model"]["attacker_data"]["samples"] == 64 and record["evaluation"]["samples"] == 32
    assert "transfer" in records["int8"] and "transfer" not in records["fp32"]

    # the same record as a PyTorch model's audit: every field of it, plus what the attacker holds
    bundle, feats, pytorch = tmp_path / "pt-bundle", tmp_path / "attack.npz", tmp_path / "pt-audit"
    assert cli(capsys, "export", "classifier4", "--input", "1x32x32", "--cut", "features.1", "--precision", "int8",
               "--calib-size", "64", "--eval-size", "64", "--out", bundle, "--quiet")[0] == 0
    assert cli(capsys, "emit", bundle, "--split", "attack", "--limit", "64", "--out", feats, "--quiet")[0] == 0
    assert cli(capsys, "audit", "--bundle", bundle, "--features", feats, *TINY, "--out", pytorch)[0] == 0
    reference = json.loads((pytorch / "audit.json").read_text())
    assert (pytorch / "grid.png").is_file()
    assert set(records["int8"]) - {"transfer"} == set(reference)
    assert set(records["int8"]["threat_model"]) == set(reference["threat_model"]) | {"attacker_holds"}


# --- bad input: one line on stderr, exit 2, nothing written --------------------------------------------------

BAD = {
    "unknown tensor": (lambda s, b: ["export", s.c4, "--cut", "relu_99"],
                       ["'relu_99' is not a tensor of", "(closest: relu_3, relu_2, relu_1)"]),
    "residual-internal tensor": (lambda s, b: ["export", s.r18, "--cut", R18_INSIDE],
                                 ["would send 2 tensors (/relu/Relu_output_0, " + R18_INSIDE + ")",
                                  "nearest legal cuts: /relu/Relu_output_0, /layer1/layer1.0/relu_1/Relu_output_0"]),
    "residual-internal tensor, audit": (lambda s, b: ["audit", "--model-onnx", s.r18, "--cut", R18_INSIDE],
                                        ["would send 2 tensors", "nearest legal cuts"]),
    "not an ONNX file, cuts": (lambda s, b: ["cuts", b.garbage], ["garbage.onnx is not an ONNX model"]),
    "not an ONNX file, export": (lambda s, b: ["export", b.garbage, "--cut", "relu"],
                                 ["garbage.onnx is not an ONNX model"]),
    "no such file": (lambda s, b: ["cuts", b.missing], ["missing.onnx: no such ONNX file"]),
    "dynamic H/W, cuts": (lambda s, b: ["cuts", b.dynamic], ["has dynamic dims (batchx3xheightxwidth)", "pass --input CxHxW"]),
    "dynamic H/W, export": (lambda s, b: ["export", b.dynamic, "--cut", R18_BLOCK], ["dynamic dims", "--input"]),
    "dynamic H/W, audit": (lambda s, b: ["audit", "--model-onnx", b.dynamic, "--cut", R18_BLOCK],
                           ["dynamic dims", "--input"]),
    "missing external data, cuts": (lambda s, b: ["cuts", b.alone],
                                    ["external data file 'classifier4.onnx.data' is missing"]),
    "missing external data, export": (lambda s, b: ["export", b.alone, "--cut", "relu_1"],
                                      ["external data file 'classifier4.onnx.data' is missing"]),
    "checkpoint, export": (lambda s, b: ["export", s.c4, "--cut", "relu_1", "--checkpoint", "model.pt"],
                           ["is an ONNX model", "drop --checkpoint"]),
    "num-classes, export": (lambda s, b: ["export", s.c4, "--cut", "relu_1", "--num-classes", "5"],
                            ["is an ONNX model", "--num-classes"]),
    "checkpoint, cuts": (lambda s, b: ["cuts", s.c4, "--checkpoint", "model.pt"], ["drop --checkpoint"]),
    "checkpoint, audit": (lambda s, b: ["audit", "--model-onnx", s.c4, "--cut", "relu_1", "--checkpoint", "m.pt"],
                          ["drop --checkpoint"]),
    "whitebox, audit": (lambda s, b: ["audit", "--model-onnx", s.c4, "--cut", "relu_1", "--attack", "whitebox"],
                        ["--attack whitebox needs the PyTorch model", "holds only the shipped file",
                         "use --attack adaptive or gan"]),
    "query-free, audit": (lambda s, b: ["audit", "--model-onnx", s.c4, "--cut", "relu_1", "--attack", "query-free"],
                          ["--attack query-free needs the PyTorch model", "use --attack adaptive or gan"]),
    "no --cut, audit": (lambda s, b: ["audit", "--model-onnx", s.c4], ["needs --cut TENSOR"]),
    "not .onnx, audit": (lambda s, b: ["audit", "--model-onnx", "model.pb", "--cut", "x"],
                         ["--model-onnx takes an ONNX file"]),
    "--cut without --model-onnx": (lambda s, b: ["audit", "--bundle", "b", "--features", "f.npz", "--cut", "x"],
                                   ["--cut go with --model-onnx"]),
    "--cut with --preset": (lambda s, b: ["audit", "--preset", "gpz-classifier4", "--cut", "x"],
                            ["--cut go with --model-onnx (a preset's cuts: --cuts)"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_nothing_written(shipped, bad, capsys, tmp_path, case):
    argv, keywords = BAD[case]
    out = tmp_path / "out"
    command = argv(shipped, bad)
    code, printed, err = cli(capsys, *command, *(["--out", out] if command[0] in ("export", "audit") else []))
    assert code == 2, (printed, err)
    assert printed == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"edgesplit {command[0]}: error: "), err
    for word in keywords:
        assert word in err, (word, err)
    assert not out.exists()


def test_dynamic_hw_with_input_lists_the_cuts(bad, capsys):
    code, out, err = cli(capsys, "cuts", bad.dynamic, "--input", "3x32x32", "--json")
    assert code == 0 and err == ""
    assert json.loads(out)["input"] == [3, 32, 32] and len(json.loads(out)["cuts"]) == 10
