"""Where training runs: `--device cpu|cuda|auto`, the settings a CUDA run uses, and tensors fed to it.

Chosen deliberately, and the same for every training loop (target model, decoders, defenses, and the audit's
white-box inversion, query-free shadow head and evaluation classifier):

- `auto` is CUDA when torch sees a GPU, else the CPU; `cuda` without a GPU is one line, not a traceback.
- On CUDA, cuDNN autotunes (`benchmark=True`): every loop feeds batches of one shape (a last, smaller batch
  adds one more tuning), so the fastest kernels are found once; `deterministic=False`, so a CUDA run repeats
  within tolerance (the seeds fix the initial weights, the order and the noise, all drawn on the CPU), not bit
  for bit. The CPU path is untouched: same operations, same order, bit-identical to a run without a device.
- Mixed precision: forward and backward passes of training run under bf16 autocast on CUDA GPUs with native
  bf16 (compute capability 8 and later; older GPUs such as a V100, a T4 or a Jetson Xavier would emulate it,
  slowly, so they train in fp32) (bf16 keeps fp32's exponent range, so no loss scaling is needed and MSE
  gradients do not underflow); losses are computed in fp32
  from the fp32-cast output, and every metric (validation MSE, reconstructions scored by PSNR/SSIM, accuracy)
  runs in fp32 outside autocast. The CPU never autocasts. The white-box inversion never autocasts either
  (it fits inputs through the head's gradients; bf16 would weaken the strongest attacker).
- Feeding: `Feeder` keeps a training set resident on the GPU when it fits in a quarter of the free memory
  (indexing then costs no host work at all), else in pinned host memory, copied batch by batch with
  `non_blocking=True` so the next batch's gather and copy overlap the current step.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from edgesplit.errors import ModelError

DEVICES = ("auto", "cpu", "cuda")
RESIDENT_SHARE = 0.25  # a training set stays on the GPU when it needs at most this share of the free memory


def resolve_device(name: str | None) -> str:
    """'cpu' or 'cuda' (or 'cuda:N') for a --device value; one line when CUDA is asked for and absent."""
    name = (name or "auto").strip().lower()
    kind = name.split(":", 1)[0]
    if kind not in DEVICES or (":" in name and kind != "cuda"):
        raise ModelError(f"unknown device {name!r}: use cpu, cuda (or cuda:N) or auto")
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda, but torch sees no CUDA GPU here (a CPU-only torch build, no driver, or "
                         "CUDA_VISIBLE_DEVICES empty): use --device cpu or auto")
    if ":" in name:
        index = name.split(":", 1)[1]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise ModelError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"numbered from 0")
    return name


def is_cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@contextlib.contextmanager
def training_on(device: str, what: str, fix: str) -> Iterator[None]:
    """The block trains on `device`: cuDNN settings for CUDA (see the module's note), and an allocator failure
    (host or GPU) as one line naming `what` ran out and the `fix` (e.g. a lower batch size)."""
    from edgesplit.models.memory import allocation_advice

    with allocation_advice(what, fix):
        if not is_cuda(device):
            yield
            return
        # the three cuDNN settings by hand, not `cudnn.flags` (which also sets TF32, and warns on recent torch)
        cudnn = torch.backends.cudnn
        before = cudnn.enabled, cudnn.benchmark, cudnn.deterministic
        cudnn.enabled, cudnn.benchmark, cudnn.deterministic = True, True, False
        try:
            yield
        finally:
            cudnn.enabled, cudnn.benchmark, cudnn.deterministic = before
            torch.cuda.empty_cache()  # give back what the run cached: the next family or step starts clean


@contextlib.contextmanager
def modules_on(device: str | torch.device, *modules: torch.nn.Module) -> Iterator[None]:
    """The modules moved (in place) to `device` for the block and back where each was afterwards, even on an
    error: a loop that trains or optimises through a caller's module leaves it where it found it. On the CPU
    nothing moves (`Module.to` of a module already there changes nothing)."""
    homes = [_home(m) for m in modules]
    try:
        for m in modules:
            m.to(device)
        yield
    finally:
        for m, home in zip(modules, homes, strict=True):
            m.to(home)


def _home(module: torch.nn.Module) -> torch.device:
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


def autocast(device: str | torch.device):
    """bf16 autocast for a training forward pass on a CUDA GPU with native bf16; nothing on the CPU (its figures
    stay bit-identical) or on an older GPU (fp32 there: see the module's note)."""
    if is_cuda(device) and native_bf16(device):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def native_bf16(device: str | torch.device) -> bool:
    """True on a CUDA GPU of compute capability 8 or later (Ampere, Ada, Hopper, Orin), whose tensor cores run
    bf16; `torch.cuda.is_bf16_supported()` also says yes where it is only emulated."""
    return torch.cuda.get_device_capability(torch.device(device))[0] >= 8


class Feeder:
    """Rows of several same-length tensors, delivered on `device` batch by batch (see the module's note)."""

    def __init__(self, *tensors: torch.Tensor, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.host = tensors  # as given, on the CPU
        self.resident = self.device.type != "cuda" or _fits(tensors, self.device)
        if self.device.type != "cuda":
            self.tensors = tensors
        elif self.resident:
            self.tensors = tuple(t.to(self.device) for t in tensors)
        else:
            self.tensors = tuple(t.pin_memory() for t in tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def rows(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The rows `idx` (a CPU index tensor) of every tensor, on the device."""
        if self.device.type != "cuda":
            return tuple(t[idx] for t in self.tensors)
        if self.resident:
            idx = idx.pin_memory().to(self.device, non_blocking=True)
            return tuple(t[idx] for t in self.tensors)
        return tuple(t[idx].pin_memory().to(self.device, non_blocking=True) for t in self.tensors)


def _fits(tensors, device: torch.device) -> bool:
    need = sum(t.numel() * t.element_size() for t in tensors)
    try:
        free, _ = torch.cuda.mem_get_info(device)
    except RuntimeError:
        return False
    return need <= RESIDENT_SHARE * free


def local_cuda_device(device: str) -> str:
    """Under torchrun each process takes the GPU of its LOCAL_RANK; elsewhere `device` as given."""
    if is_cuda(device) and ":" not in device and "LOCAL_RANK" in os.environ:
        return f"cuda:{local_gpu()}"
    return device


def local_gpu() -> int:
    """This process's GPU under a launcher: LOCAL_RANK, modulo the GPUs it sees (a launcher that gives each
    process one visible GPU, as Slurm or Kubernetes may, numbers it 0 whatever the rank)."""
    return int(os.environ.get("LOCAL_RANK", "0")) % max(torch.cuda.device_count(), 1)
