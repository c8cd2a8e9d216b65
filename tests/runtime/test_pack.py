"""Packing bundles for a board: the round trip, and archives with unsafe paths or links refused."""

import io
import tarfile

import pytest

from edgesplit.errors import BundleError
from edgesplit.runtime import pack_bundle, unpack_bundle


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_pack_and_unpack_roundtrip(bundles, tmp_path):
    archive = pack_bundle(bundles["c4"].path, tmp_path / "b.tar.gz")
    out = unpack_bundle(archive, tmp_path / "unpacked")
    assert (out / "head.onnx").read_bytes() == bundles["c4"].onnx_path.read_bytes()


@pytest.mark.parametrize("members, pattern", [
    ([("b/manifest.json", b"{}", "file"), ("../evil", b"x", "file")], "unsafe path '../evil'"),
    ([("b/manifest.json", b"{}", "file"), ("/tmp/evil", b"x", "file")], "unsafe path '/tmp/evil'"),
    ([("b/manifest.json", b"{}", "file"), ("b/link", b"", "symlink")], "not a plain file"),
    ([("b/head.onnx", b"x", "file")], "no manifest.json"),
])
def test_unpack_refuses_malicious_archives(tmp_path, members, pattern):
    _tar(tmp_path / "evil.tar.gz", members)
    with pytest.raises(BundleError, match=pattern):
        unpack_bundle(tmp_path / "evil.tar.gz", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil").exists()
