"""What a CUDA training run is set up with, checked where no GPU is: the cuDNN settings (and only those) for the
block and back afterwards, bf16 only on GPUs that run it natively, and each launched process's GPU."""

import contextlib

import torch

from edgesplit.models import device


def test_training_on_cuda_sets_cudnn_for_the_block_and_puts_it_back():
    cudnn = torch.backends.cudnn
    before = cudnn.enabled, cudnn.benchmark, cudnn.deterministic
    conv_math = cudnn.conv.fp32_precision
    with device.training_on("cuda", "training", "lower the batch size"):  # empty_cache: a no-op without CUDA
        assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic) == (True, True, False)
        assert cudnn.conv.fp32_precision == conv_math, "TF32 is left as the user set it"
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic) == before


def test_bf16_autocast_only_where_the_gpu_runs_bf16_natively(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _device=None: (7, 2))  # a Jetson Xavier
    assert not device.native_bf16("cuda")
    assert isinstance(device.autocast("cuda"), contextlib.nullcontext), "fp32 there, not emulated bf16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _device=None: (8, 7))  # a Jetson Orin
    assert device.native_bf16("cuda")
    assert isinstance(device.autocast("cpu"), contextlib.nullcontext), "the CPU never autocasts"


def test_a_launched_process_takes_the_gpu_of_its_local_rank_among_those_it_sees(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert device.local_cuda_device("cuda") == "cuda:3" and device.local_cuda_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # a launcher that shows each process one GPU
    assert device.local_cuda_device("cuda") == "cuda:0"
    assert device.local_cuda_device("cpu") == "cpu"
