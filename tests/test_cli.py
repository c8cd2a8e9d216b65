"""The `edgesplit` command: tables, JSON, training, and one-line errors with exit code 2 for bad input."""

import json
import subprocess
import sys

import pytest

from edgesplit.cli.main import main
from edgesplit.models import create_model, save_checkpoint


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_error(capsys, *argv):
    """Run a command expected to fail; return its single stderr line."""
    with pytest.raises(SystemExit) as exc:  # argparse usage errors exit via SystemExit
        code = main(list(argv))
        raise SystemExit(code)
    out, err = capsys.readouterr()
    assert exc.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert "Traceback" not in err
    return lines[0]


def test_models_table(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    for name in ("classifier4", "resnet18", "ir18", "vgg11_bn_sgm", "mobilenet_v3_small"):
        assert name in out


def test_cuts_table_for_resnet18_224(capsys):
    code, out, _ = run(capsys, "cuts", "resnet18", "--input", "3x224x224")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line and line.split()[0][0].isalpha()}
    assert rows["layer2.1"][1] == "128x28x28"
    assert rows["layer2.1"][-1] == str(128 * 28 * 28)  # int8 payload: one byte per value
    assert rows["relu"][1] == "64x112x112" and rows["avgpool"][1] == "512x1x1"
    assert "1.81G MACs" in out


def test_cuts_json(capsys):
    code, out, _ = run(capsys, "cuts", "classifier4", "--input", "1x32x32", "--json")
    assert code == 0
    doc = json.loads(out)
    assert [c["name"] for c in doc["cuts"]][:4] == ["features.0", "features.1", "features.2", "features.3"]
    assert doc["cuts"][1]["shape"] == [128, 8, 8]
    assert doc["cuts"][1]["payload_bytes"] == {"fp32": 4 * 8192, "fp16": 2 * 8192, "int8": 8192}


def test_cuts_layer_granularity_and_single_cut(capsys):
    code, out, _ = run(capsys, "cuts", "resnet20", "--granularity", "layer")
    assert code == 0 and "add_3" in out
    code, out, _ = run(capsys, "cuts", "resnet20", "--cut", "layer2.1", "--json")
    record = json.loads(out)
    assert record["split_exact"] is True and record["shape"] == [32, 16, 16]


def test_train_writes_checkpoint_and_record(capsys, tmp_path):
    code, out, _ = run(capsys, "train", "classifier4", "--data", "digits", "--epochs", "1", "--limit", "128",
                       "--out", str(tmp_path), "--quiet")
    assert code == 0 and "test accuracy" in out
    record = json.loads((tmp_path / "train.json").read_text())
    assert record["model"]["name"] == "classifier4" and record["data"]["name"] == "digits"
    assert (tmp_path / "model.pt").is_file()
    code, out, _ = run(capsys, "cuts", "classifier4", "--checkpoint", str(tmp_path / "model.pt"), "--input", "1x32x32")
    assert code == 0


@pytest.mark.parametrize("argv, expected", [
    (["cuts", "resnt18"], "unknown model 'resnt18' (closest: resnet18"),
    (["cuts", "resnet18", "--cut", "layer2.9"], "unknown cut 'layer2.9' (closest"),
    (["cuts", "resnet18", "--cut", "layer2.1.conv2"], "nearest valid cuts: layer2.0, layer2.1"),
    (["cuts", "resnet18", "--input", "3x32"], "malformed input shape '3x32'"),
    (["cuts", "resnet18", "--input", "3x32x16"], "not square"),
    (["cuts", "resnet18", "--input", "axbxc"], "malformed input shape"),
    (["cuts", "resnet18", "--granularity", "module"], "invalid choice: 'module'"),
    (["train", "classifier4", "--data", "cifar10", "--out", "x"], "--data-root"),
    (["train", "classifier4", "--data", "digitz", "--out", "x"], "digits"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_is_one_line_with_exit_2(capsys, argv, expected):
    line = run_error(capsys, *argv)
    assert expected in line


def test_missing_and_wrong_format_data_roots(capsys, tmp_path):
    line = run_error(capsys, "train", "resnet20", "--data", "cifar10", "--data-root", str(tmp_path / "nowhere"),
                     "--out", str(tmp_path / "o"))
    assert "nowhere" in line and "does not exist" in line
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("not cifar")
    line = run_error(capsys, "train", "resnet20", "--data", "cifar10", "--data-root", str(tmp_path / "junk"),
                     "--out", str(tmp_path / "o"))
    assert "cifar-10-batches-py" in line


def test_checkpoint_for_another_architecture(capsys, tmp_path):
    path = save_checkpoint(create_model("resnet20"), tmp_path / "r20.pt")
    line = run_error(capsys, "cuts", "resnet18", "--checkpoint", str(path))
    assert "saved for model 'resnet20', not 'resnet18'" in line


def test_console_script_runs_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "edgesplit.cli.main", "cuts", "nosuchmodel"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("edgesplit cuts: error: unknown model")
    assert "Traceback" not in proc.stderr


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cuts", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "edgesplit cuts resnet18 --input 3x224x224" in out


def test_train_is_reproducible_from_the_command_line(capsys, tmp_path):
    import torch

    for run in ("a", "b"):
        assert main(["train", "classifier4", "--epochs", "1", "--limit", "96", "--seed", "5",
                     "--out", str(tmp_path / run), "--quiet"]) == 0
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_defend_names_its_own_flag_for_a_malformed_param(capsys):
    """--param once went through the audit's parser, whose error named --decoder-option."""
    assert main(["defend", "classifier4", "--cut", "features.1", "--defense", "noise", "--param", "std",
                 "--out", "never-written"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--param 'std' is not KEY=VALUE (e.g. std=0.1)" in err[0]
    assert "--decoder-option" not in err[0]


@pytest.mark.parametrize("text, expected", [("3x32x32", (3, 32, 32)), (" 1 X 28 × 28 ", (1, 28, 28))])
def test_one_parser_reads_every_input_shape(text, expected):
    from edgesplit.bench.spec import SweepModel
    from edgesplit.cli.arguments import input_shape
    from edgesplit.vocab import parse_chw

    assert parse_chw(text) == input_shape(text) == SweepModel("m", input=text).input_shape == expected
    for bad in ("3x32", "axbxc", "3x32x32x", "3x-1x3", ""):
        with pytest.raises(ValueError, match="is not CHANNELSxHEIGHTxWIDTH, e.g. 3x32x32"):
            parse_chw(bad)
