"""`edgesplit bundle` against deliberate tampering (issue 13): a re-hashed manifest that lies about the graph,
a tampered archive, signatures and keys, and --force next to a folder that is not a bundle."""

import io
import json
import os
import tarfile

import pytest

from edgesplit.cli.main import main
from edgesplit.errors import BundleError
from edgesplit.export import verify_bundle
from edgesplit.runtime.pack import unpack_bundle
from edgesplit.runtime.profile import profile_bundle
from tests.cli.commands import one_line_error
from tests.export.helpers import fp32_bundle, fp32_pristine, rehash  # noqa: F401 - the fixtures 'bundle', 'pristine'
from tests.runtime.helpers import FASTEST as FAST


def tampered_archive(bundle_dir, path):
    """A packed bundle whose head.onnx has one byte flipped (the manifest still has the old hash)."""
    with tarfile.open(path, "w:gz") as tar:
        for name in sorted(os.listdir(bundle_dir)):
            data = bytearray((bundle_dir / name).read_bytes())
            if name == "head.onnx":
                data[len(data) // 2] ^= 0x01
            info = tarfile.TarInfo(f"c4/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(bytes(data)))
    return path


# --- a manifest edited and re-hashed so that it lies about the graph (item 14) -------------------------------


@pytest.mark.parametrize("edit, pattern", [
    (lambda m: m["input"].update(shape=[None, 3, 64, 64]), "manifest says input shape .* declares"),
    (lambda m: m["output"].update(shape=[None, 64, 8, 8]), "manifest says output shape .* declares"),
    (lambda m: m["wire"].update(dtype="float16"), "manifest says wire dtype float16, head.onnx emits float32"),
    (lambda m: (m["output"].update(dtype="float16"), m["wire"].update(dtype="float16")),
     "manifest says output dtype float16, head.onnx declares float32"),
    (lambda m: m["input"].update(name="images"), "manifest's input 'images' is not an input of head.onnx"),
    (lambda m: m["wire"].update(bytes_per_sample=1), "says 1 wire bytes per sample"),
])
def test_a_rehashed_manifest_that_disagrees_with_the_graph_is_refused(bundle, capsys, edit, pattern):
    rehash(bundle, edit)
    with pytest.raises(BundleError, match=pattern):
        verify_bundle(bundle)
    assert "re-export the bundle" in one_line_error(capsys, "bundle", "verify", str(bundle))
    with pytest.raises(BundleError, match=pattern):
        profile_bundle(bundle, "ort", [1], FAST)  # every loader checks it


# --- unpack verifies before anything reaches --out (item 21) -------------------------------------------------


def test_unpack_of_a_tampered_archive_writes_nothing_into_out(bundle, tmp_path, capsys):
    archive = tampered_archive(bundle, tmp_path / "bad.tar.gz")
    with pytest.raises(BundleError, match="bad.tar.gz: head.onnx does not match its sha256"):
        unpack_bundle(archive, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    keep = tmp_path / "existing"  # an older bundle that --force may replace, but only with a verified one
    keep.mkdir()
    (keep / "manifest.json").write_text("{}")
    (keep / "mine.txt").write_text("mine")
    line = one_line_error(capsys, "bundle", "unpack", str(archive), "--out", str(keep), "--force")
    assert "does not match its sha256" in line and ".existing." not in line
    assert sorted(os.listdir(keep)) == ["manifest.json", "mine.txt"], "a failed unpack leaves --out as it was"
    assert sorted(os.listdir(tmp_path)) == ["bad.tar.gz", "c4", "existing"], "no staging folder left"


def test_force_never_replaces_a_folder_that_is_not_a_bundle(bundle, tmp_path, capsys):
    """`bundle unpack --force` into a project folder used to delete it (the folder was replaced whole)."""
    from edgesplit.runtime.pack import pack_bundle

    archive = pack_bundle(bundle, tmp_path / "b.tar.gz")
    project = tmp_path / "project"
    project.mkdir()
    (project / "thesis.tex").write_text("years of work")
    line = one_line_error(capsys, "bundle", "unpack", str(archive), "--out", str(project), "--force")
    assert "not a bundle" in line and (project / "thesis.tex").read_text() == "years of work"
    assert main(["bundle", "unpack", str(archive), "--out", str(tmp_path / "again")]) == 0
    assert main(["bundle", "unpack", str(archive), "--out", str(tmp_path / "again"), "--force"]) == 0


# --- signing with a user's key (item 24) ---------------------------------------------------------------------


@pytest.fixture
def signed(bundle, tmp_path, key):
    """The bundle, unpacked from an archive signed with `key`."""
    assert main(["bundle", "pack", str(bundle), "--out", str(tmp_path / "s.tar.gz"), "--sign-key", str(key)]) == 0
    return unpack_bundle(tmp_path / "s.tar.gz", tmp_path / "signed", key=(key.read_bytes()))


def test_a_signed_bundle_verifies_with_its_key(signed, key, capsys):
    capsys.readouterr()
    assert main(["bundle", "verify", str(signed), "--verify-key", str(key)]) == 0
    assert "signature by key" in capsys.readouterr().out
    signature = json.loads((signed / "signature.json").read_text())
    assert signature["algorithm"] == "hmac-sha256" and len(signature["key_id"]) == 16


def test_a_deliberate_rehashed_edit_passes_the_digest_but_not_the_signature(signed, key, capsys):
    rehash(signed, lambda m: m["fidelity"].update(mean_cosine=1.0))  # a plausible lie the graph cannot catch
    assert main(["bundle", "verify", str(signed)]) == 0  # the digest alone protects against accidents only
    line = one_line_error(capsys, "bundle", "verify", str(signed), "--verify-key", str(key))
    assert "signature does not match the manifest" in line
    line = one_line_error(capsys, "profile", str(signed), "--verify-key", str(key), "--quiet")
    assert "signature does not match" in line


def test_unsigned_bundles_wrong_keys_and_bad_key_files_are_refused(bundle, signed, key, tmp_path, capsys):
    assert "is not signed" in one_line_error(capsys, "bundle", "verify", str(bundle), "--verify-key", str(key))
    assert "is not signed" in one_line_error(capsys, "emit", str(bundle), "--verify-key", str(key), "--out",
                                             str(tmp_path / "f.npz"), "--quiet")
    other = tmp_path / "other.key"
    other.write_text("another secret of enough bytes")
    line = one_line_error(capsys, "bundle", "verify", str(signed), "--verify-key", str(other))
    assert "was signed with key" in line and "not this key" in line
    short = tmp_path / "short.key"
    short.write_text("pw")
    assert "a key needs at least 16" in one_line_error(capsys, "bundle", "verify", str(bundle), "--verify-key",
                                                      str(short))
    assert "cannot read key file" in one_line_error(capsys, "bundle", "pack", str(bundle), "--out",
                                                    str(tmp_path / "x.tar.gz"), "--sign-key",
                                                    str(tmp_path / "nokey"))


def test_a_signature_with_non_ascii_characters_is_refused_in_one_line(bundle, tmp_path, capsys):
    import json
    import shutil

    from edgesplit.errors import BundleError
    from edgesplit.export.bundle import verify_bundle

    key = tmp_path / "key"
    key.write_bytes(b"k" * 32)
    signed = tmp_path / "signed"
    shutil.copytree(bundle, signed)
    assert main(["bundle", "pack", str(signed), "--out", str(tmp_path / "s.tar.gz"), "--sign-key", str(key)]) == 0
    assert main(["bundle", "unpack", str(tmp_path / "s.tar.gz"), "--out", str(tmp_path / "u"),
                 "--verify-key", str(key)]) == 0
    record = json.loads((tmp_path / "u" / "signature.json").read_text())
    record["signature"] = "é" * 64
    (tmp_path / "u" / "signature.json").write_text(json.dumps(record))
    with pytest.raises(BundleError, match="signature does not match"):
        verify_bundle(tmp_path / "u", key.read_bytes())
