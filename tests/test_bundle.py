"""Bundles: verification catches tampering, truncation, missing files, manifest edits and unsafe paths."""

import json

import pytest

from edgesplit.cli.main import main
from edgesplit.errors import BundleError
from edgesplit.export import ExportConfig, export_bundle, verify_bundle
from edgesplit.export.bundle import MANIFEST, manifest_digest


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return export_bundle(ExportConfig("classifier4", "features.1", precision="int8", input_shape=(1, 32, 32),
                                      calib_size=32, eval_size=32), tmp_path_factory.mktemp("b") / "bundle")


@pytest.fixture
def bundle(pristine, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(pristine.path, copy)
    return copy


def test_fresh_bundle_verifies(bundle):
    verified = verify_bundle(bundle)
    assert verified.manifest["digest"] == manifest_digest(verified.manifest)
    assert len(verified.sha256) == 64


def test_one_changed_byte_is_refused(bundle):
    data = bytearray((bundle / "head.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / "head.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="head.onnx does not match its sha256"):
        verify_bundle(bundle)


def test_truncated_file_is_refused(bundle):
    data = (bundle / "head.onnx").read_bytes()
    (bundle / "head.onnx").write_bytes(data[: len(data) - 10])
    with pytest.raises(BundleError, match="truncated or modified"):
        verify_bundle(bundle)


def test_missing_file_is_refused(bundle):
    (bundle / "fidelity.json").unlink()
    with pytest.raises(BundleError, match="incomplete: fidelity.json is missing"):
        verify_bundle(bundle)


def test_edited_manifest_is_refused(bundle):
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["wire"]["scale"] *= 2
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="manifest.json was edited"):
        verify_bundle(bundle)


def test_unsafe_path_in_manifest_is_refused(bundle):
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"]["../evil"] = {"sha256": "0" * 64, "bytes": 1}
    manifest["digest"] = manifest_digest(manifest)
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="unsafe file path"):
        verify_bundle(bundle)


@pytest.mark.parametrize("content, pattern", [("{not json", "not valid JSON"), ('{"schema": "other"}', "not an edgesplit"),
                                              ('{"schema": "edgesplit.bundle", "schema_version": 99}', "schema version 99")])
def test_corrupt_manifest(bundle, content, pattern):
    (bundle / MANIFEST).write_text(content)
    with pytest.raises(BundleError, match=pattern):
        verify_bundle(bundle)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        verify_bundle(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="has no manifest.json"):
        verify_bundle(tmp_path / "empty")


def test_cli_verify_ok_and_tampered(bundle, capsys):
    assert main(["bundle", "verify", str(bundle)]) == 0
    assert "OK (2 files match manifest.json" in capsys.readouterr().out
    data = bytearray((bundle / "head.onnx").read_bytes())
    data[100] ^= 0xFF
    (bundle / "head.onnx").write_bytes(bytes(data))
    assert main(["bundle", "verify", str(bundle)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "head.onnx does not match its sha256" in err and "re-export" in err


def test_cli_export_prints_fidelity(tmp_path, capsys):
    code = main(["export", "classifier4", "--cut", "features.0", "--input", "1x32x32", "--precision", "int8",
                 "--calib-size", "32", "--eval-size", "32", "--out", str(tmp_path / "b"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "mean cosine vs fp32" in out and "B/sample" in out
    assert main(["export", "classifier4", "--cut", "features.0", "--input", "1x32x32", "--out",
                 str(tmp_path / "b"), "--quiet"]) == 2
    assert "already holds a bundle" in capsys.readouterr().err
