"""`edgesplit audit`: on a bundle's emitted features or on a foreign ONNX head, the presets, and bad input
(a head whose data file is missing, a feature file whose meta record is a list) in one line."""

import numpy as np

from edgesplit.attacks.presets import list_presets
from tests.cli.commands import one_line_error
from tests.export.helpers import fp32_bundle, fp32_pristine, tiny_head  # noqa: F401 - the fixtures 'bundle', 'pristine'
from tests.runtime.helpers import feature_arrays


def test_cli_audit(int8_bundle, tmp_path, capsys):
    from edgesplit.cli.main import main

    feats = tmp_path / "attack.npz"
    assert main(["emit", str(int8_bundle.path), "--split", "attack", "--out", str(feats), "--quiet"]) == 0
    assert main(["audit", "--bundle", str(int8_bundle.path), "--features", str(feats), "--decoder", "deconv",
                 "--epochs", "3", "--eval-limit", "32", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "floor (mean image)" in out and (tmp_path / "a" / "audit.json").is_file()
    assert main(["audit", "--bundle", str(int8_bundle.path), "--features", str(feats), "--data", "mnist",
                 "--out", str(tmp_path / "b")]) == 2
    assert "pass --data digits" in capsys.readouterr().err


def test_audit_head_on_the_command_line(plain_onnx, tmp_path, capsys):
    from edgesplit.cli.main import main

    assert main(["audit", "--head", str(plain_onnx), "--data", "digits", "--decoder", "deconv", "--epochs", "3",
                 "--eval-limit", "24", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "external:head" in out and (tmp_path / "a" / "audit.json").is_file()


def test_attacks_that_need_the_pytorch_model_refuse_an_external_head(plain_onnx, tmp_path, capsys):
    from edgesplit.cli.main import main

    for extra in (["--attack", "whitebox"], ["--attack", "query-free"]):
        assert main(["audit", "--head", str(plain_onnx), "--data", "digits", "--epochs", "1", "--eval-limit", "8",
                     "--out", str(tmp_path / extra[1]), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert "external head" in err and "adaptive or gan" in err and "Traceback" not in err


def test_preset_command_line(capsys):
    from edgesplit.cli.main import main

    assert main(["audit", "--list-presets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_presets()) and "8x8x8" in out
    assert main(["audit", "--preset", "cem-standard"]) == 2
    assert "needs --out" in capsys.readouterr().err
    assert main(["audit", "--bundle", "b", "--features", "f", "--out", "o", "--decoder-option", "depth"]) == 2
    assert "not KEY=VALUE" in capsys.readouterr().err


def test_audit_head_with_its_data_file_missing_is_one_line_and_leaves_no_bundle(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    source = tiny_head(tmp_path / "src")
    (tmp_path / "src" / "head.onnx.data").unlink()
    line = one_line_error(capsys, "audit", "--head", str(source), "--data", "digits", "--out",
                          str(tmp_path / "a"), "--quiet")
    assert "head.onnx.data" in line and "copy head.onnx.data next to head.onnx" in line
    assert not (tmp_path / "a" / "bundle").exists()


def test_audit_of_a_feature_file_whose_meta_is_a_list_exits_2(bundle, tmp_path, capsys):
    np.savez(tmp_path / "f.npz", **feature_arrays(["a", "list"]))
    line = one_line_error(capsys, "audit", "--bundle", str(bundle), "--features", str(tmp_path / "f.npz"),
                          "--data", "digits", "--out", str(tmp_path / "a"), "--quiet")
    assert "meta record is a JSON list" in line
