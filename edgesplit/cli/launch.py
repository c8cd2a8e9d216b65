"""`--nproc N`: a command run again in N processes by torch's elastic launcher (what `torchrun --standalone
--nproc-per-node N -m edgesplit.cli.main ...` does), and each such process's part: rank 0 prints and writes,
the others train their share quietly."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator


def without_nproc(argv: list[str]) -> list[str]:
    """The command line with its --nproc option removed (the processes it starts run the command as given)."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--nproc":
            skip = True
        elif not token.startswith("--nproc="):
            out.append(token)
    return out


def relaunch(args, device: str, what: str) -> int:
    """Run this command line (without --nproc) in args.nproc processes; 0 when all finished (a failure is one
    line, raised by `distributed.launch`)."""
    from edgesplit.models import distributed

    distributed.check_nproc(args.nproc, device)
    argv = without_nproc(list(args.argv))
    distributed.launch(args.nproc, sys.executable, ("-m", "edgesplit.cli.main", *argv), what=f"edgesplit {what}")
    return 0


def one_process_only(args, error: type, what: str, **modes) -> None:
    """One line when --nproc (or torchrun) meets a mode that writes files before training (`modes`: flag name ->
    its value); several processes split only `what`."""
    from edgesplit.models import distributed

    if args.nproc > 1 or distributed.launched():
        given = [f"--{name.replace('_', '-')}" for name, value in modes.items() if value]
        if given:
            raise error(f"several processes split {what}; {given[0]} writes files first: run it in one process "
                        f"(drop --nproc)")


@contextlib.contextmanager
def rank_session(args, device: str) -> Iterator[bool]:
    """Join the process group when torchrun started this process (nothing otherwise); yields whether this
    process is the writer (rank 0). The other ranks print nothing and draw no progress bars."""
    from edgesplit.models import distributed

    with distributed.session(device):
        if distributed.is_writer():
            yield True
            return
        args.quiet = True
        with contextlib.redirect_stdout(io.StringIO()):
            yield False
