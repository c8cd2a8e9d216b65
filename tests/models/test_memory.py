"""A model too big for memory is refused before allocating; an allocator failure becomes one line of advice."""

import pytest
import torch

from edgesplit.errors import ModelError


def test_footprint_counts_weights_and_activations_without_allocating():
    from edgesplit.models.memory import Footprint, check_fits, footprint
    from edgesplit.models.registry import ModelSpec, build

    spec = ModelSpec("resnet18", 100_000_000, 3, 32)
    needs = footprint(lambda: build(spec), (3, 32, 32))
    assert needs.weights > (512 + 1) * 100_000_000 * 4  # the final Linear alone
    small = footprint(lambda: build(ModelSpec("classifier4", 10, 1, 32)), (1, 32, 32))
    assert small.input == 32 * 32 * 4 and small.largest_activation == 64 * 32 * 32 * 4
    with pytest.raises(ModelError, match="needs at least 1.0 KB .* has 1000 B available: do less"):
        check_fits("it", Footprint(1024, 0, 0), "do less", available=1000)


def test_an_allocator_failure_becomes_one_line_of_advice():
    from edgesplit.models.memory import allocation_advice

    failure = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 822083584000 bytes. Error code 12")
    with pytest.raises(ModelError, match=r"^out of memory training at batch 64 .*: lower --batch-size$"), \
            allocation_advice("training at batch 64", "lower --batch-size"):
        raise failure
    with pytest.raises(ModelError, match="out of memory") as info, allocation_advice("x", "y"):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    assert "GiB available" not in str(info.value), "a GPU's failure never quotes the host's memory"
    assert "on the GPU" in str(info.value)
    with pytest.raises(RuntimeError, match="unrelated"), allocation_advice("x", "y"):
        raise RuntimeError("unrelated")
