"""`edgesplit defend`: defend then export on the command line; a malformed --param or --input and an unknown
parameter are one line naming the flag."""

import pytest

from edgesplit.cli.main import main
from edgesplit.defenses import apply_defense
from edgesplit.errors import DefenseError
from edgesplit.models import create_model


def test_defend_then_export_on_the_command_line(tmp_path, capsys):
    import json

    from edgesplit.cli.main import main

    assert main(["defend", "classifier4", "--cut", "features.2", "--defense", "bottleneck", "--param", "channels=8",
                 "--input", "1x32x32", "--epochs", "1", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "--cut features.2.defense" in out
    report = json.loads((tmp_path / "d" / "defend.json").read_text())
    assert report["params"] == {"channels": 8} and 0 <= report["test_accuracy"] <= 1
    assert main(["export", "classifier4", "--checkpoint", str(tmp_path / "d" / "model.pt"), "--cut",
                 "features.2.defense", "--precision", "int8", "--calib-size", "32", "--out", str(tmp_path / "b"),
                 "--quiet"]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["wire"]["bytes_per_sample"] == 8 * 4 * 4, "the bottleneck's 8 channels cross, as INT8"
    assert manifest["defense"]["name"] == "bottleneck" and not manifest["stochastic"]


def test_defense_errors_are_one_line(capsys):
    from edgesplit.cli.main import main

    with pytest.raises(DefenseError, match="not a module path"):
        apply_defense(create_model("classifier4", num_classes=10, in_chans=1, img_size=32), "conv_9", "noise", None,
                      1, 32)
    with pytest.raises(DefenseError, match="needs C x H x W"):
        model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32)
        apply_defense(model, "fc.1", "fft-entropy", None, 1, 32)
    assert main(["defend", "classifier4", "--cut", "features.1", "--defense", "noise", "--param", "sigma=1",
                 "--out", "x"]) == 2
    assert "no parameter 'sigma'" in capsys.readouterr().err
    assert main(["defend", "--list"]) == 0
    assert "fft-entropy" in capsys.readouterr().out


def test_defend_names_its_own_flag_for_a_malformed_param(capsys):
    """--param once went through the audit's parser, whose error named --decoder-option."""
    assert main(["defend", "classifier4", "--cut", "features.1", "--defense", "noise", "--param", "std",
                 "--out", "never-written"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--param 'std' is not KEY=VALUE (e.g. std=0.1)" in err[0]
    assert "--decoder-option" not in err[0]


def test_defend_input_is_parsed_like_every_other_shape(capsys):
    from edgesplit.cli.main import main

    with pytest.raises(SystemExit) as exc:  # once: ValueError traceback from "3x".split("x")
        main(["defend", "classifier4", "--cut", "features.1", "--defense", "noise", "--input", "3x", "--out", "d"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "malformed input shape '3x'" in err[0]
