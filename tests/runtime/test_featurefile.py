"""Feature files: round trip and decoding; corrupt ones, a bad meta record or no rows refused in one line;
a save never leaves a temporary file or a half-written one."""

import errno
import json
import os

import numpy as np
import pytest

from edgesplit.errors import BackendError, EdgesplitError
from edgesplit.runtime import load_features
from edgesplit.runtime.emit import emit_split
from edgesplit.runtime.featurefile import FeatureFile
from tests.runtime.helpers import GOOD_META, feature_arrays


def test_featurefile_roundtrip_and_decoding(bundles, tmp_path):
    ff = emit_split(bundles["c4"].path, "digits", "test", limit=20)
    path = ff.save(tmp_path / "f.npz")
    back = load_features(path)
    assert np.array_equal(back.features, ff.features) and np.array_equal(back.ids, ff.ids)
    wire = back.wire
    assert np.allclose(back.decoded(), (ff.features.astype(np.float32) - wire.zero_point) * wire.scale)


def test_corrupt_featurefiles_are_refused(bundles, tmp_path):
    ff = emit_split(bundles["c4"].path, "digits", "test", limit=10)
    bad = tmp_path / "bad.npz"
    np.savez(bad, features=ff.features, ids=ff.ids[:5], meta=np.frombuffer(json.dumps(ff.meta).encode(), np.uint8))
    with pytest.raises(BackendError, match="10 feature rows but 5 ids"):
        load_features(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(BackendError, match="not a readable edgesplit feature file"):
        load_features(tmp_path / "junk.npz")


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


def test_feature_files_are_saved_under_a_unique_temporary_name_that_never_stays(tmp_path, monkeypatch):
    from edgesplit.runtime import featurefile

    ff = featurefile.FeatureFile(np.zeros((2, 3), np.float32), np.arange(2), {"count": 2})
    target = tmp_path / "f.npz"
    used = []
    real = np.savez

    def recording(file, **arrays):
        used.append(str(file))
        return real(file, **arrays)

    monkeypatch.setattr(featurefile.np, "savez", recording)
    ff.save(target)
    ff.save(target)
    assert len(set(used)) == 2, "two saves of one file never share a temporary name"
    assert all(not u.endswith("f.npz.tmp.npz") for u in used)
    before = target.read_bytes()

    def full_disk(file, **arrays):
        with open(file, "wb") as fh:
            fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(featurefile.np, "savez", full_disk)
    with pytest.raises((OSError, EdgesplitError)):
        ff.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz"], "no temporary file is left behind"
    assert target.read_bytes() == before, "the file that was there is untouched"
