"""`edgesplit export`: it prints the fidelity, keeps an existing bundle, and signs with a key."""

import warnings

import pytest

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


def test_int8_scope_is_taught_and_what_auto_cannot_measure_is_refused_in_one_line(tmp_path, capsys):
    from edgesplit.export.int8_targets import detect_target

    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = capsys.readouterr().out
    assert "--int8-scope {auto,all}" in text and "quantization.scope" in text and "--int8-scope all" in text
    other = "arm" if detect_target() != "arm" else "x86"
    for extra, said in ((["--target", other], f"--target {other} lays INT8 out for another machine"),
                        (["--format", "tensorrt", "--int8-scope", "auto"], "says nothing about a TensorRT engine")):
        code = main(["export", "classifier4", "--cut", "features.0", "--input", "1x32x32", "--precision", "int8",
                     *extra, "--out", str(tmp_path / "b"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and said in err and "--int8-scope all" in err and err.count("\n") == 1
        assert not (tmp_path / "b").exists()
    # Not asked for, auto is not the default of a TensorRT engine: all is (without TensorRT here, the line says so).
    code = main(["export", "classifier4", "--cut", "features.0", "--input", "1x32x32", "--precision", "int8",
                 "--format", "tensorrt", "--out", str(tmp_path / "b"), "--quiet"])
    err = capsys.readouterr().err
    assert "--int8-scope" not in err and err.count("\n") == 1
    assert code == 0 or "tensorrt" in err.lower(), err


def test_cli_export_says_what_auto_chose(tmp_path, capsys):
    code = main(["export", "classifier4", "--cut", "features.0", "--input", "1x32x32", "--precision", "int8",
                 "--calib-size", "32", "--eval-size", "32", "--out", str(tmp_path / "b"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "int8 scope auto -> " in out and " ms" in out
