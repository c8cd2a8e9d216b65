"""The restricted unpickler: it refuses code (os.system, eval) and still reads numpy pickles."""

import os

import numpy as np
import pytest

from edgesplit.data import load_dataset
from edgesplit.data.safepickle import load_pickle
from edgesplit.errors import DataError
from tests.data.helpers import _dump, write_cifar10


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def test_restricted_unpickler_refuses_os_system(tmp_path):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    _dump(folder / "test_batch", {b"data": _Evil(os.system, f"echo pwned > {marker}"), b"labels": [0]}, 2)
    with pytest.raises(DataError, match="refusing") as err:
        load_dataset("cifar10", root=tmp_path, split="test")
    assert "system" in str(err.value) and "test_batch" in str(err.value)
    assert not marker.exists()
    evil_eval = tmp_path / "eval.pkl"
    _dump(evil_eval, _Evil(eval, "__import__('os').getcwd()"), 4)
    with pytest.raises(DataError, match="builtins.eval"):
        load_pickle(evil_eval)


def test_restricted_unpickler_reads_numpy_pickles(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        _dump(path, {b"data": array, "names": [b"a", "b"], "t": (1, 2.5)}, protocol)
        loaded = load_pickle(path)
        assert (loaded[b"data"] == array).all() and loaded["names"] == [b"a", "b"]
