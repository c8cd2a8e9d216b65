"""`edgesplit bundle verify`: OK for a fresh bundle, one line and exit 2 for a tampered one."""

from edgesplit.cli.main import main
from tests.export.helpers import int8_bundle_copy, int8_pristine  # noqa: F401 - the fixtures 'bundle', 'pristine'


def test_cli_verify_ok_and_tampered(bundle, capsys):
    assert main(["bundle", "verify", str(bundle)]) == 0
    assert "OK (2 files match manifest.json" in capsys.readouterr().out
    data = bytearray((bundle / "head.onnx").read_bytes())
    data[100] ^= 0xFF
    (bundle / "head.onnx").write_bytes(bytes(data))
    assert main(["bundle", "verify", str(bundle)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "head.onnx does not match its sha256" in err and "re-export" in err
