"""One sweep at a time per folder: an exclusive lock file that says who holds it.

`folder_lock(out)` takes an advisory `flock` on OUT/sweep.lock and writes the holder (pid, host, start time,
command) into it. A second sweep into the same folder is refused in one line naming the holder. The kernel
drops the lock when its process dies (kill -9 included), so a lock file left by a dead sweep is simply taken
over, with a note naming the pid that left it. The file is removed when the sweep ends.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgesplit.errors import BenchError
from edgesplit.progress import Progress, resolve

LOCK = "sweep.lock"


@contextmanager
def folder_lock(folder: str | os.PathLike, progress: Progress | None = None) -> Iterator[dict]:
    """Hold the sweep lock of `folder` for the block; yields the holder record written into the lock file."""
    path = Path(folder) / LOCK
    fd = _acquire(path)
    try:
        left = _holder(fd)
        if left:
            resolve(progress).message(f"note: took over {path} left by {_describe(left)}, "
                                      f"{'which is no longer running' if _dead(left) else 'which no longer holds it'}")
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv)}
        _write(fd, me)
        yield me
    finally:
        path.unlink(missing_ok=True)  # while still locked: a waiting sweep then finds the file gone and retries
        os.close(fd)


def _acquire(path: Path) -> int:
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BenchError(f"cannot create the lock file {path} ({exc.strerror or exc}): choose a writable "
                             f"--out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise BenchError(f"{path.parent} is in use by another sweep ({_describe(holder)}): wait for it to "
                             f"finish or stop it, or use another --out") from None
        except OSError as exc:  # a filesystem without flock (some NFS / CIFS mounts)
            os.close(fd)
            raise BenchError(f"cannot lock {path} ({exc.strerror or exc}): this filesystem does not support file "
                             f"locks; use an --out on a local disk") from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # the holder removed the file between our open and our lock: open the new one


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _holder(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    try:
        holder = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _write(fd: int, holder: dict) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        os.fsync(fd)
    except OSError as exc:
        raise BenchError(f"cannot write the sweep lock ({exc.strerror or exc}): free some space in --out or "
                         f"choose another") from None


def _describe(holder: dict) -> str:
    if not holder:
        return "a process that has not written its name yet"
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"


def _dead(holder: dict) -> bool:
    """True when the holder ran on this host and its pid no longer exists."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
