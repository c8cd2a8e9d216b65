"""Atomic writes: a fresh temporary name each time, and an interrupted write leaves the old file."""

import pytest


def test_atomic_writes_use_a_fresh_temporary_name_each_time(tmp_path):
    from edgesplit.atomic import atomic_path, write_text_atomic

    names = set()
    for text in ("a", "b"):
        with atomic_path(tmp_path / "spec.json") as tmp:
            names.add(tmp.name)
            tmp.write_text(text)
    assert len(names) == 2 and (tmp_path / "spec.json").read_text() == "b"
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "spec.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["spec.json"] and (tmp_path / "spec.json").read_text() == "b"
    write_text_atomic(tmp_path / "spec.json", "c")
    assert (tmp_path / "spec.json").read_text() == "c"
