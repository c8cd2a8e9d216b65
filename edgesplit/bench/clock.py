"""A sweep's step counter and time-left estimate ("step 12 of 40 ... about 6 min left").

The estimate adds, for every kind of step not reached yet, the mean time that kind took (in this run and in
the rows already in the results file), leaving out the steps the results file says are finished (a resumed
sweep keeps those unless their inputs changed).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

from edgesplit.bench.rows import SweepRow


class StepClock:
    def __init__(self, planned: Counter, rows: list[SweepRow], spec_sha256: str) -> None:
        self.total = sum(planned.values())
        self.left = Counter(planned)  # per step kind: planned and not reached yet
        self.count = 0
        self.start = time.perf_counter()
        self.ran = self.reused = 0
        self.finished_before = Counter(r.step for r in rows if r.spec_sha256 == spec_sha256 and r.finished)
        self.seconds: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            if r.ok and r.seconds is not None:
                self.seconds[r.step].append(r.seconds)

    def reached(self, step: str, seconds: float | None) -> None:
        """One step accounted for: run for `seconds`, or kept from an earlier run (None)."""
        self.count += 1
        self.left[step] -= 1
        if seconds is None:
            self.reused += 1
            self.finished_before[step] -= 1
        else:
            self.ran += 1
            self.seconds[step].append(seconds)

    def passed_over(self, steps: Counter) -> None:
        """Steps that will not be reached (what they depend on failed): counted as accounted for. Only steps this
        run planned count: a process of a shared sweep plans a part of them (rank 0 no audits, the others only
        their units' audits), so a failure upstream passes over at most what is left of each kind."""
        for step, n in steps.items():
            n = min(n, max(0, self.left[step]))
            self.count += n
            self.left[step] -= n

    def position(self) -> str:
        return f"step {self.count} of {self.total}"

    def time_left(self) -> str:
        """'about 4 min left' from each step kind's mean time; 'more than ... left' while a kind still to run has
        not been timed; 'time left unknown' before any step has been timed."""
        to_run = {step: max(0, n - max(0, self.finished_before[step])) for step, n in self.left.items()}
        if not any(to_run.values()):
            return "no steps left to run"
        every = [s for times in self.seconds.values() for s in times]
        if not every:
            return "time left unknown"
        seconds = sum(n * sum(self.seconds[step]) / len(self.seconds[step])
                      for step, n in to_run.items() if n and self.seconds.get(step))
        untimed = sorted(step for step, n in to_run.items() if n and not self.seconds.get(step))
        if untimed:  # an audit can take 100 times an export: no guess from the other kinds
            return f"more than {duration(seconds)} left ({', '.join(untimed)} steps not timed yet)"
        return f"about {duration(seconds)} left"

    def elapsed(self) -> str:
        return duration(time.perf_counter() - self.start)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
