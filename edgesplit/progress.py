"""Progress reporting: the library reports through a `Progress` object; only the CLI draws bars.

Library functions take `progress: Progress | None`. `None` means silent. The CLI passes
`TqdmProgress()`; tests can pass `RecordingProgress()` to check what was reported.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Task(Protocol):
    def update(self, n: int = 1, **postfix: float | str) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int | None = None) -> Iterator[Task]: ...

    def message(self, text: str) -> None: ...


class _SilentTask:
    def update(self, n: int = 1, **postfix: float | str) -> None:
        pass


class SilentProgress:
    """Reports nothing (the default for library calls)."""

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        yield _SilentTask()

    def message(self, text: str) -> None:
        pass


class RecordingProgress:
    """Keeps what was reported, for tests: `events` holds (kind, description, payload) tuples."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        events = self.events
        events.append(("start", description, total))

        class _Task:
            def update(self, n: int = 1, **postfix: float | str) -> None:
                events.append(("update", description, (n, dict(postfix))))

        yield _Task()
        events.append(("end", description, None))

    def message(self, text: str) -> None:
        self.events.append(("message", text, None))


class TqdmProgress:
    """Progress bars on stderr via tqdm (used by the CLI)."""

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        from tqdm.auto import tqdm

        if total is None:  # a step of unknown length: one line when it ends, no bar
            start = time.perf_counter()
            yield _SilentTask()
            if not self.disable:
                tqdm.write(f"{description}: done in {time.perf_counter() - start:.1f} s")
            return
        bar = tqdm(total=total, desc=description, disable=self.disable, leave=False, dynamic_ncols=True)

        class _Task:
            def update(self, n: int = 1, **postfix: float | str) -> None:
                if postfix:
                    bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in postfix.items()},
                                    refresh=False)
                bar.update(n)

        try:
            yield _Task()
        finally:
            bar.close()

    def message(self, text: str) -> None:
        from tqdm.auto import tqdm

        if not self.disable:
            tqdm.write(text)


def resolve(progress: Progress | None) -> Progress:
    return progress if progress is not None else SilentProgress()
