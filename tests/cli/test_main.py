"""The `edgesplit` entry point: bad input is one line with exit code 2, `python -m edgesplit.cli.main` runs,
and the listing commands never import torch."""

import subprocess
import sys

import pytest

from tests.cli.commands import run_error


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


def test_console_script_runs_in_a_subprocess():
    proc = subprocess.run([sys.executable, "-m", "edgesplit.cli.main", "cuts", "nosuchmodel"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("edgesplit cuts: error: unknown model")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [["datasets"], ["devices"], ["devices", "show", "raspberry-pi-5-8gb"]])
def test_listing_commands_do_not_import_torch(argv):
    probe = (f"import sys\nfrom edgesplit.cli.main import main\ncode = main({argv!r})\n"
             "print('torch' in sys.modules, code, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "False 0", done.stderr
    assert done.stdout.strip(), "the listing printed its table"
