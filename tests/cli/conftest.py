"""Fixtures of the CLI tests."""

import pytest


@pytest.fixture
def key(tmp_path):
    """A signing key file (32 bytes, hex)."""
    path = tmp_path / "bundle.key"
    path.write_text("5e1f" * 16 + "\n")
    return path
