"""Will a model fit? Its parameter and activation bytes, from the shapes alone, against the memory available.

`create_model` builds the architecture once on PyTorch's meta device (shapes without storage) and runs one
meta forward pass, so `--num-classes 100000000` or `--input 1x100000x100000` is refused with a sentence
before anything is allocated, instead of an allocator traceback or the kernel's OOM killer. Allocator
failures that still happen (batches, training) become one line of advice through `allocation_advice`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from edgesplit.errors import ModelError
from edgesplit.hostmemory import available_bytes, free_memory, out_of_memory_as, says_out_of_memory


@dataclass(frozen=True)
class Footprint:
    """Bytes one sample needs: the weights (parameters and buffers), the input, and the largest activation."""

    weights: int
    input: int
    largest_activation: int

    @property
    def total(self) -> int:
        # A layer's input and output are alive together, beside the weights and the model's input.
        return self.weights + self.input + 2 * self.largest_activation


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def footprint(build: Callable[[], nn.Module], input_shape: tuple[int, ...]) -> Footprint | None:
    """The footprint of the model `build()` makes, for one input of `input_shape` (C, H, W), without storage.

    Built and run on the meta device; None when the builder or the forward pass does not support it (then
    no check is possible, and nothing is refused).
    """
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            model = build()
        weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    except Exception:  # any builder may not support meta tensors; the check is best-effort
        return None
    example = torch.empty(1, *input_shape, device="meta")
    largest = [0]

    def record(module, inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            largest[0] = max(largest[0], output.numel() * output.element_size())

    hooks = [m.register_forward_hook(record) for m in model.modules()]
    try:
        with torch.no_grad():
            model.eval()(example)
    except Exception:  # a forward that fails on meta still gets its weights checked
        largest[0] = 0
    finally:
        for hook in hooks:
            hook.remove()
    return Footprint(weights, example.numel() * example.element_size(), largest[0])


def check_fits(what: str, needs: Footprint | None, fix: str, available: int | None = None) -> None:
    """ModelError naming the bytes `what` needs and the bytes available, when it cannot fit."""
    available = available_bytes() if available is None else available
    if needs is None or available is None or needs.total <= available:
        return
    parts = f"{human_bytes(needs.weights)} of weights"
    if needs.largest_activation:
        parts += f" and {human_bytes(needs.input + 2 * needs.largest_activation)} of activations for one image"
    raise ModelError(f"{what} needs at least {human_bytes(needs.total)} of memory ({parts}), but this machine has "
                     f"{human_bytes(available)} available: {fix}")


def is_allocator_failure(exc: BaseException) -> bool:
    """True for torch's out-of-memory errors (CPU allocator or CUDA) and MemoryError."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, (MemoryError, RuntimeError)) and says_out_of_memory(exc)


def allocation_advice(what: str, fix: str):
    """Turn an allocator failure inside the block into a one-line ModelError: what ran out (the GPU's free
    memory for a CUDA failure, the host's otherwise), and the fix."""
    return out_of_memory_as(ModelError, what, fix, is_allocator_failure, _free)


def _free(exc: BaseException) -> str:
    if "cuda" in str(exc).lower() and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            free, total = torch.cuda.mem_get_info()
            return f" ({free / 2**30:.2f} of {total / 2**30:.2f} GiB free on the GPU)"
    return free_memory(exc)
