"""Bundles: verification catches tampering, truncation, missing files, manifest edits and unsafe paths."""

import json

import pytest

from edgesplit.errors import BundleError
from edgesplit.export import verify_bundle
from edgesplit.export.bundle import MANIFEST, manifest_digest
from tests.export.helpers import int8_bundle_copy, int8_pristine  # noqa: F401 - the fixtures 'bundle', 'pristine'


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
