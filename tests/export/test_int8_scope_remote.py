"""`export --int8-scope auto --device ssh://...`: the INT8 candidates are measured by the board's runner.

The board is a real sshd on 127.0.0.1 (tests/devices/ssh.py). Its python is a wrapper that logs every request
the runner gets and runs this checkout's edgesplit, so the test sees which measurements ran there; this
process is barred from measuring anything itself.
"""

import json
import platform
import stat
import sys
from pathlib import Path

import pytest

import edgesplit
from edgesplit.cli.main import main
from edgesplit.errors import ExportError
from edgesplit.export.int8_scope import check_measurable
from tests.devices.ssh import _free_port, loopback_sshd  # noqa: F401 - the fixture 'sshd'

ROOT = Path(edgesplit.__file__).resolve().parent.parent
SMALL = ["classifier4", "--cut", "features.1", "--input", "1x32x32", "--precision", "int8", "--calib-size", "32",
         "--eval-size", "16", "--quiet"]


@pytest.fixture
def board(sshd, tmp_path):
    """{'args': the CLI's board flags, 'log': the runner's request log}."""
    log = tmp_path / "requests.jsonl"
    python = tmp_path / "board-python"
    python.write_text(f"""#!{sys.executable}
import os, subprocess, sys
request = sys.stdin.read()
with open({str(log)!r}, "a") as f:
    f.write(request.strip() + "\\n")
env = {{**os.environ, "PYTHONPATH": {str(ROOT)!r}}}
sys.exit(subprocess.run([{sys.executable!r}, *sys.argv[1:]], input=request, text=True, env=env).returncode)
""")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    args = ["--device", sshd["url"], "--ssh-identity", sshd["identity"], "--remote-python", str(python)]
    for option in sshd["options"]:
        args += ["--ssh-option", option]
    return {"args": args, "log": log}


def _not_here(*_args, **_kwargs):
    raise AssertionError("measured on this host, not on the board")


def test_auto_measures_on_the_board_and_records_it(sshd, board, tmp_path, monkeypatch, capsys):
    from edgesplit.export import int8_measure, load_bundle, pipeline

    monkeypatch.setattr(pipeline, "LocalMeasurer", _not_here)
    monkeypatch.setattr(int8_measure, "profile_kernels", _not_here)  # runs only in the board's runner process
    monkeypatch.setattr(int8_measure, "time_pass", _not_here)
    assert main(["export", *SMALL, *board["args"], "--out", str(tmp_path / "b")]) == 0, capsys.readouterr().err
    assert "int8 scope auto -> " in capsys.readouterr().out
    manifest = load_bundle(tmp_path / "b").manifest
    scope = manifest["quantization"]["scope"]
    assert manifest["quantization"]["target"] == scope["measured_on"]["target"], "target auto: the board's layout"
    host = scope["measured_on"]
    assert host["device"] == sshd["url"] and host["hostname"] == platform.node(), "the board, as its runner says"
    assert host["target"] and isinstance(host["flags"], list) and host["onnxruntime"] and host["input"] == "batch 1"
    assert f"on {sshd['url']}" in scope["reason"]
    assert "specific to the host" in scope["note"]
    assert all(c["p50_ms"] > 0 for c in scope["candidates"])
    requests = [json.loads(line) for line in board["log"].read_text().splitlines()]
    actions = [r["action"] for r in requests]
    assert actions[0] == "int8_host" and actions.count("profile_nodes") == 2, actions
    timing = [r for r in requests if r["action"] == "time_heads"]
    assert len(timing) == scope["timing_passes"] and all(len(r["heads"]) == len(scope["candidates"]) for r in timing)
    sent = {r["feed"] for r in requests if "feed" in r} | {h for r in timing for h in r["heads"]}
    assert all(p.startswith("/tmp/edgesplit.") for p in sent), "paths the board's mktemp made"
    assert not any(Path(p).exists() for p in sent), "the board's work folder is removed"


def test_an_unreachable_board_is_one_line_unless_all_is_asked(sshd, tmp_path, capsys):
    closed = ["--device", f"ssh://nobody@127.0.0.1:{_free_port()}", "--ssh-identity", sshd["identity"]]
    for option in sshd["options"]:
        closed += ["--ssh-option", option]
    assert main(["export", *SMALL, *closed, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "cannot reach ssh://nobody@127.0.0.1" in err and err.count("\n") == 1
    assert not (tmp_path / "b").exists()
    assert main(["export", *SMALL, *closed, "--int8-scope", "all", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "manifest.json").is_file(), "all measures nothing: the board is not contacted"


class _Board:
    where, target = "ssh://pi@board:22", "arm"


def test_a_target_the_board_does_not_have_is_refused():
    from edgesplit.export import ExportConfig

    with pytest.raises(ExportError, match=r"on ssh://pi@board:22 \(a arm CPU\), but --target x86-vnni .*drop "
                                          r"--target.*--int8-scope all"):
        check_measurable(ExportConfig("classifier4", "features.0", "int8", target="x86-vnni"), _Board())
    check_measurable(ExportConfig("classifier4", "features.0", "int8", target="arm"), _Board())


def test_device_on_an_export_that_measures_nothing_there_is_one_line(tmp_path, capsys):
    args = ["export", "classifier4", "--cut", "features.0", "--input", "1x32x32", "--precision", "fp16",
            "--device", "ssh://pi@board", "--out", str(tmp_path / "b")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "a fp16 export measures nothing there: drop --device" in err and err.count("\n") == 1
    assert not (tmp_path / "b").exists()
