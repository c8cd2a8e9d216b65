"""`edgesplit devices`: list, show and detect (on a fake root), and --help with examples."""

import json
import sys

import pytest

from edgesplit.devices import list_boards
from edgesplit.errors import DeviceError
from tests.devices.helpers import _fake_root


def _run_cli(argv: list[str]) -> int:
    """Through the real entry point once main.py registers `devices`; until then through a local parser."""
    from edgesplit.cli import devices_cmd
    from edgesplit.cli.common import OneLineParser
    from edgesplit.cli.main import build_parser, main

    parser = build_parser()
    if any("devices" in (getattr(a, "choices", None) or ()) for a in parser._actions):
        return main(argv)
    parser = OneLineParser(prog="edgesplit")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    devices_cmd.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DeviceError as exc:
        print(f"edgesplit {args.command}: error: {exc}", file=sys.stderr)
        return 2


def test_cli_devices_list_show_detect(capsys, tmp_path):
    assert _run_cli(["devices"]) == 0
    out = capsys.readouterr().out
    for p in list_boards():
        assert p.name in out
    assert "int8 TOPS" in out and "tensorrt" in out

    assert _run_cli(["devices", "--json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == [p.name for p in list_boards()]

    assert _run_cli(["devices", "show", "jetson-agx-orin-64gb"]) == 0
    out = capsys.readouterr().out
    assert "source:" in out and "technical brief" in out and "204.8 GB/s" in out

    assert _run_cli(["devices", "show", "jetson-nano-orin"]) == 2
    err = capsys.readouterr().err
    assert "unknown device profile" in err and "closest" in err and len(err.strip().splitlines()) == 1

    root = _fake_root(tmp_path, {"proc/device-tree/model": b"Raspberry Pi 5 Model B Rev 1.1\x00"})
    assert _run_cli(["devices", "detect", "--root", root, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == "raspberry-pi-5-8gb"
    assert _run_cli(["devices", "detect", "--root", root]) == 0
    out = capsys.readouterr().out
    assert "raspberry-pi-5-8gb (exact match)" in out and "proc/device-tree/model" in out


def test_cli_help_mentions_examples(capsys):
    with pytest.raises(SystemExit):
        _run_cli(["devices", "--help"])
    assert "edgesplit devices detect" in capsys.readouterr().out
