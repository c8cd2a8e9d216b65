"""`edgesplit export`: it prints the fidelity, keeps an existing bundle, and signs with a key."""

import warnings

from edgesplit.cli.main import main
from edgesplit.export import verify_bundle
from edgesplit.runtime.pack import pack_bundle, unpack_bundle


def test_cli_export_prints_fidelity(tmp_path, capsys):
    code = main(["export", "classifier4", "--cut", "features.0", "--input", "1x32x32", "--precision", "int8",
                 "--calib-size", "32", "--eval-size", "32", "--out", str(tmp_path / "b"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "mean cosine vs fp32" in out and "B/sample" in out
    assert main(["export", "classifier4", "--cut", "features.0", "--input", "1x32x32", "--out",
                 str(tmp_path / "b"), "--quiet"]) == 2
    assert "already holds a bundle" in capsys.readouterr().err


def test_export_signs_the_bundle(tmp_path, key, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["export", "classifier4", "--cut", "features.0", "--input", "1x32x32", "--eval-size", "8",
                     "--out", str(tmp_path / "e"), "--sign-key", str(key), "--quiet"]) == 0
    assert (tmp_path / "e" / "signature.json").is_file()
    verify_bundle(tmp_path / "e", key.read_bytes())
    archive = pack_bundle(tmp_path / "e", tmp_path / "e.tar.gz")  # the bundle's own signature travels
    unpack_bundle(archive, tmp_path / "e2", key=key.read_bytes())
