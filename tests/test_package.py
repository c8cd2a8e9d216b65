"""Package hygiene: importing edgesplit (and its CLI parser) stays cheap and never imports torch."""

import subprocess
import sys


def _imports_torch(code: str) -> bool:
    probe = f"{code}\nimport sys\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_import_edgesplit_does_not_import_torch():
    assert not _imports_torch("import edgesplit, edgesplit.errors, edgesplit.progress")


def test_cli_help_does_not_import_torch():
    assert not _imports_torch("from edgesplit.cli.main import build_parser\nbuild_parser().format_help()")


def test_markers_are_registered(pytestconfig):
    markers = "\n".join(pytestconfig.getini("markers"))
    assert "slow:" in markers and "gpu:" in markers
