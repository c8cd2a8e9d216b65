"""Running `edgesplit` in-process for the CLI tests: a command's output, or the one line a failing one prints."""

from edgesplit.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_ok(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


def run_error(capsys, *argv) -> str:
    """Run a command that must fail: exit 2 (returned, or argparse's usage error) and exactly one stderr line,
    no traceback; return that line."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors exit via SystemExit
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    return lines[0]


one_line_error = run_error  # the name the bundle and runtime tests use


def _one_error_line(capsys, argv):
    """Like run_error, but the command itself must return 2: an argparse usage error fails the test."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
