"""Will a batch fit? Its input and output bytes against the memory available, before anything is allocated;
and an allocator failure that still happens (a head's activations) turned into one line of advice.

Torch-free (the device runner uses it); what is available comes from `edgesplit.hostmemory`.
"""

from __future__ import annotations

import numpy as np

from edgesplit.errors import BackendError
from edgesplit.hostmemory import available_bytes, out_of_memory_as


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def sample_io_bytes(bundle) -> int:
    """Bytes one sample holds in a profiling/emit batch: the float32 images made for it, their cast to the
    head's input dtype (fp16 heads), and the wire output."""
    inputs = int(np.prod(bundle.input["shape"][1:]))
    outputs = int(np.prod(bundle.output["shape"][1:]))
    cast = inputs * np.dtype(bundle.input["dtype"]).itemsize if bundle.input["dtype"] != "float32" else 0
    return inputs * 4 + cast + outputs * np.dtype(bundle.output["dtype"]).itemsize


def check_batch_size(batch) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise BackendError(f"batch size {batch!r} is not a positive integer: pass e.g. --batch 8")


def check_batch_fits(bundle, batch: int, available: int | None = None) -> None:
    """BackendError before allocating when a batch is not a positive integer, or when its input and output
    alone exceed the memory available."""
    check_batch_size(batch)
    available = available_bytes() if available is None else available
    per_sample = sample_io_bytes(bundle)
    if available is None or batch * per_sample <= available:
        return
    largest = max(available // per_sample, 0)
    raise BackendError(f"batch {batch} needs {gib(batch * per_sample)} for its input and output alone, but this "
                       f"machine has {gib(available)} available: use a batch of at most {largest} "
                       f"(fewer still, for the head's activations)")


def out_of_memory_advice(batch: int):
    """Turn an allocator failure while running a batch into one BackendError line with the fix."""
    return out_of_memory_as(BackendError, f"running batch {batch}",
                            "use a smaller batch (--batch / --batch-size), or close what else uses memory")
