"""The results file keeps its rows and skips a torn last line."""

from edgesplit.runtime.results import append_row, read_rows


def test_results_file_keeps_rows_and_skips_a_torn_tail(tmp_path):
    path = tmp_path / "r.jsonl"
    append_row(path, {"a": 1})
    append_row(path, {"a": 2})
    with open(path, "a") as fh:
        fh.write('{"a": 3, "tor')
    assert [r["a"] for r in read_rows(path)] == [1, 2]
