"""A sweep shared by several processes (`edgesplit sweep --nproc N`, or torchrun running `edgesplit sweep`).

The audits (decoder training) are most of a sweep's time and each unit's chain of audits (its precisions,
each warm-starting from the one before) needs nothing from another unit, so whole units are handed out;
everything else stays in one process:

1. prepare (rank 0 alone, every core): train, tails, estimates, exports, profiles and emits, exactly as one
   process runs them. The other processes wait in a barrier and use no CPU, so the profiles are timed on a
   quiet machine, as in a one-process sweep.
2. audit (every process): each process walks the same sweep order, reads the rows rank 0 wrote, and runs the
   audits of the units k with k mod N = its rank, by itself (`distributed.alone()`: no DDP inside a decoder)
   on its own GPU (LOCAL_RANK) or its share of the cores. Each appends its rows to the one results file
   (appends take turns, `atomic.append_line`), so a crashed or interrupted process loses nothing another
   finished, and the same command resumes it.

torch.distributed (gloo, Python objects only) carries the coordination: the barrier, rank 0's failure if
phase 1 stops, and the counts of the closing line. No process pool of our own.
"""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from pathlib import Path

from edgesplit.bench.spec import SweepSpec
from edgesplit.errors import BenchError, EdgesplitError
from edgesplit.progress import Progress

PATIENCE = dt.timedelta(days=7)  # rank 0's first part can take hours; a crashed process ends the run anyway


def run_shared(spec: SweepSpec, out: Path, fresh: bool = False, append: bool = False,
               progress: Progress | None = None, export_once: bool = True) -> Path:
    """This process's part of the sweep (see the module's docstring); returns the results file."""
    import torch
    import torch.distributed as dist

    from edgesplit.bench.lock import folder_lock
    from edgesplit.bench.store import failed_steps
    from edgesplit.bench.sweep import RESULTS, check_writable, open_sweep
    from edgesplit.bench.tail_timing import server_threads
    from edgesplit.models import distributed
    from edgesplit.models.device import resolve_device
    from edgesplit.progress import resolve

    progress, device = resolve(progress), resolve_device(spec.train_device)
    with distributed.session(device, backend="gloo", timeout=PATIENCE), ExitStack() as held:
        rank, n = dist.get_rank(), dist.get_world_size()
        cores = server_threads()  # every CPU this process may use
        failure = error = None
        if rank == 0:
            try:
                check_writable(out)
                held.enter_context(folder_lock(out, progress))
                torch.set_num_threads(cores)  # alone for now: every core, as one process would have
                progress.message(f"sweep shared by {n} processes: this one runs every step but the audits first, "
                                 f"then the {n} processes audit one unit in {n} each")
                with distributed.alone():  # train and defend steps: this process alone, not DDP with idle peers
                    open_sweep(spec, out, fresh, append, progress, export_once, stage="prepare").run()
            except EdgesplitError as exc:
                error, failure = exc, str(exc)
        said = [failure]
        dist.broadcast_object_list(said, src=0)  # the barrier: the others wait here for rank 0's first part
        if said[0] is not None:
            if error is not None:
                raise error
            return out / RESULTS  # rank 0 reports it
        torch.set_num_threads(max(1, cores // n))  # the cores shared out (data loading and metrics on CUDA too)
        if torch.device(device).type == "cuda":
            device = f"cuda:{torch.cuda.current_device()}"  # LOCAL_RANK's GPU (session set it)
        own = _RankProgress(progress, rank, n) if rank else progress
        try:
            with distributed.alone():
                runner = open_sweep(spec, out, fresh=False, append=True, progress=own, export_once=export_once,
                                    stage="audit", share=(rank, n))
                runner.device = device
                runner.run()
            failure = None
        except EdgesplitError as exc:
            failure = f"process {rank}: {exc}"
        counts = [None] * n
        dist.all_gather_object(counts, (runner.clock.ran if failure is None else 0, failure))
        errors = [f for _, f in counts if f]
        if rank == 0:
            from edgesplit.bench.store import ResultsStore

            failed = len(failed_steps(ResultsStore(out / RESULTS, spec.sha256, append=True).rows, spec.sha256))
            progress.message(f"{sum(r for r, _ in counts)} audit steps run by {n} processes; {failed} steps failed "
                             f"in all")
            if errors:
                raise BenchError("; ".join(errors))
    return out / RESULTS


class _RankProgress:
    """Another rank's progress: its step lines, marked with the process they come from; no bars."""

    def __init__(self, progress: Progress, rank: int, n: int) -> None:
        from edgesplit.progress import SilentProgress

        self._progress, self._silent, self._tag = progress, SilentProgress(), f"[process {rank} of {n}] "

    def task(self, description: str, total: int | None = None):
        return self._silent.task(description, total)

    def message(self, text: str) -> None:
        self._progress.message(self._tag + text)
