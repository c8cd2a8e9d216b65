"""Fixtures of the defense tests."""

import pytest

from edgesplit.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    return (load_dataset("digits", split="train", limit=128, img_size=32),
            load_dataset("digits", split="test", limit=64, img_size=32))
