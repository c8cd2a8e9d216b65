"""Training split across processes with torch.distributed (started by `torchrun`, or `edgesplit audit --nproc`).

A process started by torchrun's elastic launcher finds RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous
address in its environment; `session(device)` joins the process group then (NCCL on GPUs, gloo on the CPU)
and leaves it at the end. Everything here is a no-op in a single process, so the training loops call it
unconditionally and a one-process run is exactly what it was.

What the loops rely on: every rank runs the same program on the same data with the same seeds, so they take
the same decisions; the few that depend on a clock (time budgets) or on floating-point sums that may differ
per rank are taken by rank 0 and broadcast (`agree`), and a module's weights and buffers are re-broadcast from
rank 0 (`sync_module`) before anything is evaluated, so all ranks score the same model. Only rank 0 writes
files (`is_writer`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn

from edgesplit.errors import ModelError
from edgesplit.hostmemory import usable_cores
from edgesplit.models.device import local_gpu

TIMEOUT = dt.timedelta(minutes=10)  # a rank that stops answering fails the others after this long


def launched() -> bool:
    """True in a process that torchrun (or `--nproc`) started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


_alone = False  # set by `alone()`: this process trains by itself although it belongs to a group


def active() -> bool:
    """True while several processes share the training in hand (a group is joined and `alone()` is not on)."""
    return not _alone and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def launch_rank() -> int:
    """This process's rank as the launcher gave it (0 when run alone); readable before and after `session`."""
    return int(os.environ.get("RANK", "0"))


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Inside the block this process trains by itself (no DDP, no collectives, it writes its own files) although
    it belongs to a group: a sweep gives whole audit steps to each process instead of splitting one."""
    global _alone
    saved, _alone = _alone, True
    try:
        yield
    finally:
        _alone = saved


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_writer() -> bool:
    """Only rank 0 writes files and prints results."""
    return rank() == 0


def backend_for(device: str) -> str:
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


@contextlib.contextmanager
def session(device: str, backend: str | None = None, timeout: dt.timedelta = TIMEOUT) -> Iterator[None]:
    """Join the process group torchrun set up (nothing in a single process); leave it at the end. `backend`:
    default NCCL for a CUDA device, else gloo (gloo on any device when only Python objects travel)."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield
        return
    if not dist.is_available():
        raise ModelError("this torch build has no torch.distributed: run in one process (drop --nproc)")
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(local_gpu())
    dist.init_process_group(backend or backend_for(device), timeout=timeout)
    try:
        yield
    finally:
        dist.destroy_process_group()


def wrap(model: nn.Module, device: str) -> nn.Module:
    """`model` as DistributedDataParallel when several processes train it (gradients all-reduced), else itself."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    index = torch.device(device).index
    return DistributedDataParallel(model, device_ids=[index] if index is not None else None)


def shard(idx: torch.Tensor) -> torch.Tensor:
    """This rank's share of one global batch (rows rank, rank + N, ...): N processes take the optimiser steps
    one process takes, on the same samples, each computing the gradient of its share."""
    return idx[rank()::world_size()] if active() else idx


def agree(value: float) -> float:
    """Rank 0's `value` on every rank (a clock reading, a validation loss): decisions taken once."""
    if not active():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
    dist.broadcast(t, src=0)
    return float(t.item())


def total(*values: float) -> tuple[float, ...]:
    """Each value summed over the ranks (e.g. per-rank loss sums and sample counts)."""
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    return tuple(float(v) for v in t.tolist())


def sync_module(module: nn.Module) -> None:
    """Rank 0's parameters and buffers (e.g. BatchNorm running statistics, which each rank updates from its own
    share of a batch) copied to every rank."""
    if not active():
        return
    with torch.no_grad():
        for t in (*module.parameters(), *module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(module: nn.Module) -> None:
    """All-reduce (mean) the gradients of a module trained outside DDP (the GAN prior's discriminator, which
    runs several forward passes per step, which DDP does not allow)."""
    if not active():
        return
    n = world_size()
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= n


def check_nproc(nproc: int, device: str) -> None:
    """One line when `nproc` processes cannot each have a GPU (NCCL needs one per process) or nproc < 1."""
    if nproc < 1:
        raise ModelError(f"--nproc {nproc}: give 1 or more processes")
    if torch.device(device).type == "cuda":
        if nproc > 1 and torch.device(device).index is not None:
            raise ModelError(f"--nproc {nproc} with --device {device}: each process takes a GPU of its own (process "
                             f"k uses GPU k); pass --device cuda, and CUDA_VISIBLE_DEVICES to choose the GPUs")
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if nproc > gpus:
            raise ModelError(f"--nproc {nproc} on --device cuda, but this machine has {gpus} GPU(s): NCCL needs one "
                             f"GPU per process; use --nproc {max(1, gpus)}, or --device cpu (gloo)")
        return
    cores = usable_cores()
    if nproc > cores:  # each gloo process holds a model and a copy of the data: more than the cores only thrash
        raise ModelError(f"--nproc {nproc} on the CPU, but this process may use {cores} core(s): each process "
                         f"needs a core of its own; use --nproc {cores} or fewer")


def launch(nproc: int, entrypoint, args: tuple = (), what: str = "the run", threads: int | None = None) -> dict:
    """Run `entrypoint(*args)` in `nproc` processes on this machine through torch's elastic launcher (what
    `torchrun --standalone --nproc-per-node N` does): a callable (spawned; its return values by rank), or a
    program path with its arguments as a list (never a shell string). A process that fails stops the others
    and raises one ModelError line naming it. `threads`: OMP threads per process (default: the cores shared)."""
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"edgesplit-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                          start_method="spawn")
    threads = threads or max(1, (os.cpu_count() or 1) // nproc)
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the workers inherit it: nproc x threads = the cores
    try:
        return elastic_launch(config, entrypoint)(*args)
    except ChildFailedError as exc:
        rank, failure = min(exc.failures.items()) if exc.failures else (-1, None)
        code = getattr(failure, "exitcode", "?")
        how = f"was killed by signal {-code}" if isinstance(code, int) and code < 0 else f"exited with code {code}"
        raise ModelError(f"{what}: process {rank} of {nproc} {how}, so the run stopped (its own message is above; "
                         f"nothing was written by a process that had not finished)") from None
    except (RuntimeError, OSError, ValueError) as exc:  # the launcher's own failures: rendezvous, ports, spawning
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{what}: torch's launcher could not start {nproc} processes ({type(exc).__name__}: "
                         f"{first}); run without --nproc, or with torchrun yourself") from None
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
