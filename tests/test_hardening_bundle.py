"""Issue 13, bundles and the runtime: bad inputs give one line and exit 2, nothing is overwritten or left
half-made, and bundles can be signed (items 1, 8, 10, 12, 14, 21, 22, 23, 24)."""

import errno
import io
import json
import os
import shutil
import stat
import tarfile
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesplit.cli.main import main
from edgesplit.errors import BackendError, BundleError, ExportError
from edgesplit.export import ExportConfig, export_bundle, import_head, verify_bundle
from edgesplit.export.bundle import MANIFEST, load_bundle, manifest_digest, write_bundle
from edgesplit.export.import_head import bundle_from_onnx
from edgesplit.runtime import TimingConfig
from edgesplit.runtime.emit import emit_arrays
from edgesplit.runtime.featurefile import FeatureFile, load_features
from edgesplit.runtime.pack import pack_bundle, unpack_bundle
from edgesplit.runtime.profile import profile_bundle

FAST = TimingConfig(warmup=1, iters=2, min_seconds=0)


def one_line_error(capsys, *argv) -> str:
    """Run a command that must fail: exit 2 (returned or via argparse) and exactly one stderr line."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A tiny fp32 classifier4 head (1x32x32 in, 128x8x8 out), exported once."""
    return export_bundle(ExportConfig("classifier4", "features.1", precision="fp32", input_shape=(1, 32, 32),
                                      eval_size=16), tmp_path_factory.mktemp("b") / "c4")


@pytest.fixture
def bundle(pristine, tmp_path):
    copy = tmp_path / "c4"
    shutil.copytree(pristine.path, copy)
    return copy


def rehash(bundle_dir, edit) -> None:
    """Edit manifest.json and recompute its digest, as a deliberate tamperer would."""
    path = bundle_dir / MANIFEST
    manifest = json.loads(path.read_text())
    edit(manifest)
    manifest["digest"] = manifest_digest(manifest)
    path.write_text(json.dumps(manifest, indent=2))


# --- 1: emit --out refuses an existing file and a name that is not .npz --------------------------------------
def test_emit_refuses_an_existing_out_file_unless_force(bundle, tmp_path, capsys):
    precious = bundle / "head.onnx"
    before = precious.read_bytes()
    line = one_line_error(capsys, "emit", str(bundle), "--limit", "8", "--out", str(precious), "--quiet")
    assert "must end in .npz" in line and precious.read_bytes() == before
    existing = tmp_path / "f.npz"
    existing.write_bytes(b"keep me")
    line = one_line_error(capsys, "emit", str(bundle), "--limit", "8", "--out", str(existing), "--quiet")
    assert "already exists: pass --force" in line and existing.read_bytes() == b"keep me"
    assert main(["emit", str(bundle), "--limit", "8", "--out", str(existing), "--force", "--quiet"]) == 0
    assert len(load_features(existing).ids) == 8


def test_emit_into_an_unwritable_place_is_refused_before_emitting(bundle, tmp_path, capsys, monkeypatch):
    """Item 13: the folder is checked before the features are computed, not when they are saved."""
    import edgesplit.runtime.emit as emit_module

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    computed = []
    monkeypatch.setattr(emit_module, "emit_arrays", lambda *a, **k: computed.append(1))
    line = one_line_error(capsys, "emit", str(bundle), "--limit", "8", "--out", str(blocker / "f.npz"), "--quiet")
    assert line.startswith("edgesplit emit: error: cannot write in") and "choose a writable --out" in line
    assert not computed, "nothing was emitted first"


# --- 8: heads whose weights are external data ----------------------------------------------------------------
def tiny_head(folder, external: bool = True, channels: int = 32):
    """A conv head (1x1x16x16 -> 1x32x16x16, 1152 bytes of weights) saved as torch.onnx.export's dynamo exporter does: head.onnx with
    its weights in head.onnx.data beside it."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((channels, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 16, 16])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path = folder / "head.onnx"
    onnx.save_model(model, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
                    location="head.onnx.data", size_threshold=0)
    return path


def reference_output(onnx_path, images):
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"x": images})[0]


def test_external_data_head_is_folded_into_the_bundle(tmp_path):
    (tmp_path / "src").mkdir()
    source = tiny_head(tmp_path / "src")
    assert (tmp_path / "src" / "head.onnx.data").is_file()
    bundle = bundle_from_onnx(source, tmp_path / "b")
    assert sorted(bundle.manifest["files"]) == ["head.onnx"] and sorted(os.listdir(bundle.path)) == [
        "head.onnx", "manifest.json"]
    images = np.random.default_rng(1).random((1, 1, 16, 16), dtype=np.float32)
    ff = emit_arrays(load_bundle(bundle.path), images, np.array([0]), {})
    assert np.allclose(ff.features, reference_output(source, images), atol=1e-5)
    assert list(bundle.manifest["imported_from"]["external_data"]) == ["head.onnx.data"]


def test_a_head_too_big_to_fold_keeps_its_external_data_hashed(tmp_path, monkeypatch):
    monkeypatch.setattr(import_head, "INLINE_LIMIT", 0)  # as if the model passed protobuf's 2 GiB limit
    (tmp_path / "src").mkdir()
    source = tiny_head(tmp_path / "src")
    bundle = bundle_from_onnx(source, tmp_path / "b")
    assert sorted(bundle.manifest["files"]) == ["head.onnx", "head.onnx.data"]
    images = np.random.default_rng(1).random((1, 1, 16, 16), dtype=np.float32)
    assert np.allclose(emit_arrays(verify_bundle(bundle.path), images, np.array([0]), {}).features,
                       reference_output(source, images), atol=1e-5)
    data = bytearray((bundle.path / "head.onnx.data").read_bytes())
    data[5] ^= 0xFF
    (bundle.path / "head.onnx.data").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="head.onnx.data does not match its sha256"):
        verify_bundle(bundle.path)


def test_audit_head_with_its_data_file_missing_is_one_line_and_leaves_no_bundle(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    source = tiny_head(tmp_path / "src")
    (tmp_path / "src" / "head.onnx.data").unlink()
    line = one_line_error(capsys, "audit", "--head", str(source), "--data", "digits", "--out",
                          str(tmp_path / "a"), "--quiet")
    assert "head.onnx.data" in line and "copy head.onnx.data next to head.onnx" in line
    assert not (tmp_path / "a" / "bundle").exists()


def test_a_head_onnxruntime_cannot_open_is_refused_before_any_bundle_is_written(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 8, 8])
    model = helper.make_model(helper.make_graph([helper.make_node("Mystery", ["x"], ["y"], domain="example.ops")],
                                                "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("example.ops", 1)])
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="onnxruntime cannot load m.onnx"):
        bundle_from_onnx(tmp_path / "m.onnx", tmp_path / "out" / "bundle")
    assert not (tmp_path / "out" / "bundle").exists()


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    source = tiny_head(tmp_path / "src")
    model = onnx.load(str(source), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../secret.bin"
    onnx.save(model, str(source))
    (tmp_path / "secret.bin").write_bytes(b"\0" * 256)
    with pytest.raises(ExportError, match="outside its folder"):
        bundle_from_onnx(source, tmp_path / "b")


# --- 10: feature files with a bad meta record or no rows ----------------------------------------------------
def feature_arrays(meta, rows: int = 3, drop: str | None = None) -> dict:
    arrays = {"features": np.zeros((rows, 4), np.float32), "ids": np.arange(rows, dtype=np.int64),
              "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    arrays.pop(drop, None)
    return arrays


GOOD_META = {"schema": "edgesplit.features", "schema_version": 1, "bundle": "b", "bundle_sha256": "0" * 64,
             "wire": {"format": "fp32", "dtype": "float32", "scale": None, "zero_point": None},
             "output_shape": [None, 4], "data": {"name": "digits", "split": "attack", "seed": 0}}


@pytest.mark.parametrize("meta, rows, drop, pattern", [
    (["not", "a", "dict"], 3, None, "meta record is a JSON list"),
    ({k: v for k, v in GOOD_META.items() if k != "wire"}, 3, None, "meta field 'wire' is missing"),
    ({k: v for k, v in GOOD_META.items() if k != "data"}, 3, None, "meta field 'data' is missing"),
    ({**GOOD_META, "data": "digits"}, 3, None, "meta field 'data' is a str"),
    ({**GOOD_META, "data": {"name": "digits", "split": "attack"}}, 3, None, "data.seed is missing"),
    ({**GOOD_META, "wire": {"format": "int8", "dtype": "uint8"}}, 3, None, "meta field 'wire' is unusable"),
    (GOOD_META, 0, None, "holds no samples"),
    (GOOD_META, 3, "ids", "it has no ids array"),
])
def test_bad_feature_files_are_one_line(tmp_path, meta, rows, drop, pattern):
    path = tmp_path / "f.npz"
    np.savez(path, **feature_arrays(meta, rows, drop))
    with pytest.raises(BackendError, match=pattern) as info:
        load_features(path)
    assert "\n" not in str(info.value)


def test_a_well_formed_feature_file_still_loads(tmp_path):
    np.savez(tmp_path / "f.npz", **feature_arrays(GOOD_META))
    assert len(load_features(tmp_path / "f.npz").ids) == 3


def test_audit_of_a_feature_file_whose_meta_is_a_list_exits_2(bundle, tmp_path, capsys):
    np.savez(tmp_path / "f.npz", **feature_arrays(["a", "list"]))
    line = one_line_error(capsys, "audit", "--bundle", str(bundle), "--features", str(tmp_path / "f.npz"),
                          "--data", "digits", "--out", str(tmp_path / "a"), "--quiet")
    assert "meta record is a JSON list" in line


# --- 12: batch sizes --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", ["0", "-1", "many"])
def test_emit_batch_size_below_one_is_a_usage_error(bundle, tmp_path, capsys, size):
    line = one_line_error(capsys, "emit", str(bundle), "--batch-size", size, "--out", str(tmp_path / "f.npz"))
    assert "--batch-size" in line and "positive integer" in line
    assert not (tmp_path / "f.npz").exists()


def test_profile_batch_beyond_memory_is_refused_before_allocating(bundle, capsys, monkeypatch):
    from edgesplit.runtime import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 64 << 20)  # a board with 64 MiB free
    line = one_line_error(capsys, "profile", str(bundle), "--batch", "100000", "--quiet")
    # one sample: 1x32x32 float32 input (4 KiB) + 128x8x8 float32 output (32 KiB)
    assert "batch 100000 needs 3.43 GiB for its input and output alone" in line
    assert "use a batch of at most 1820" in line


@pytest.mark.parametrize("failure", [MemoryError(), RuntimeError("Failed to allocate memory for requested buffer "
                                                                 "of size 4194304000")])
def test_allocator_failure_while_profiling_becomes_advice(bundle, monkeypatch, failure):
    from edgesplit.runtime import profile

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(profile, "time_backend", fail)
    with pytest.raises(BackendError, match="out of memory running batch 2.*use a smaller batch"):
        profile_bundle(bundle, "ort", [2], FAST)


# --- 14: a manifest edited and re-hashed so that it lies about the graph --------------------------------------
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


def test_a_device_without_the_onnx_package_still_checks_the_manifest_against_the_graph(bundle, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError: onnxruntime reads the graph
    assert verify_bundle(bundle)
    rehash(bundle, lambda m: m["output"].update(shape=[None, 64, 8, 8]))
    with pytest.raises(BundleError, match="manifest says output shape"):
        verify_bundle(bundle)


# --- 21: unpack verifies before anything reaches --out -------------------------------------------------------
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


# --- 22: bundle folders follow the umask ---------------------------------------------------------------------
def folder_mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_and_unpacked_bundles_follow_the_umask(pristine, tmp_path, umask):
    old = os.umask(umask)
    try:
        files = {name: pristine.path / name for name in pristine.manifest["files"]}
        meta = {k: v for k, v in pristine.manifest.items() if k not in ("schema", "schema_version", "files",
                                                                      "digest")}
        written = write_bundle(tmp_path / "w", files, meta)
        unpacked = unpack_bundle(pack_bundle(pristine, tmp_path / "p.tar.gz"), tmp_path / "u")
    finally:
        os.umask(old)
    assert folder_mode(written.path) == 0o777 & ~umask
    assert folder_mode(unpacked) == 0o777 & ~umask


def test_an_exported_bundle_is_readable_by_others_under_umask_022(pristine):
    assert folder_mode(pristine.path) == 0o755  # pytest runs under the usual 022


# --- 23: a failed feature-file save leaves no temporary file --------------------------------------------------
def test_a_failed_feature_save_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    from edgesplit.runtime import featurefile

    target = tmp_path / "f.npz"
    target.write_bytes(b"the old features")

    def disk_full(file, **arrays):
        with open(file, "wb") as fh:
            fh.write(b"\0" * 4096)  # part of the archive made it to disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(featurefile.np, "savez", disk_full)
    ff = FeatureFile(np.zeros((2, 4), np.float32), np.arange(2), dict(GOOD_META))
    with pytest.raises(BackendError, match="could not write .*No space left on device.*free some space") as info:
        ff.save(target)
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == ["f.npz"] and target.read_bytes() == b"the old features"


# --- 24: signing with a user's key --------------------------------------------------------------------------
@pytest.fixture
def key(tmp_path):
    path = tmp_path / "bundle.key"
    path.write_text("5e1f" * 16 + "\n")
    return path


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


def test_export_signs_the_bundle(tmp_path, key, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["export", "classifier4", "--cut", "features.0", "--input", "1x32x32", "--eval-size", "8",
                     "--out", str(tmp_path / "e"), "--sign-key", str(key), "--quiet"]) == 0
    assert (tmp_path / "e" / "signature.json").is_file()
    verify_bundle(tmp_path / "e", key.read_bytes())
    archive = pack_bundle(tmp_path / "e", tmp_path / "e.tar.gz")  # the bundle's own signature travels
    unpack_bundle(archive, tmp_path / "e2", key=key.read_bytes())


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
