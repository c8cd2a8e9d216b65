"""The idx reader refuses malformed files in one line."""

import pytest

from edgesplit.data.idx import read_idx
from edgesplit.errors import DataError
from tests.data.helpers import idx_bytes, mnist_arrays


def test_idx_validation(tmp_path):
    images, labels = mnist_arrays(5, 0)
    good = idx_bytes(images)
    cases = {
        "magic.idx": (b"\x01\x02" + good[2:], "not an idx file"),
        "type.idx": (good[:2] + b"\x0d" + good[3:], "type 0x0d"),
        "short.idx": (good[:-10], "truncated"),
        "long.idx": (good + b"\x00", "longer than its header"),
        "header.idx": (good[:6], "truncated"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=message) as err:
            read_idx(tmp_path / name, 3)
        assert name in str(err.value)
    (tmp_path / "labels.idx").write_bytes(idx_bytes(labels))
    with pytest.raises(DataError, match="1 dimensions, expected 3"):
        read_idx(tmp_path / "labels.idx", 3)
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="bad.gz"):
        read_idx(tmp_path / "bad.gz", 3)
