"""CUDA graphs for the torch-cuda runner: which heads may be captured, the capture, and event-timed windows.

A head is captured once per input shape (`torch.cuda.CUDAGraph`): warmed up on a side stream, then recorded
with a static input buffer that `bind` copies each batch into and a static output that every replay rewrites.
Heads that draw random numbers (the noise and dropout defenses) are timed eagerly, as is any head whose
capture fails or whose replay differs from its eager call: with the mode "auto" the reason is recorded and
the runner falls back; with graphs asked for explicitly it is one BackendError line.

Torch is imported inside functions only; `graph_plan` and `random_ops` run on the CPU (tested there).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgesplit.errors import BackendError

GRAPH, EAGER = "graph", "eager"
CAPTURE_WARMUP = 3  # eager calls on the side stream before capture (cuDNN/cuBLAS pick and cache their kernels)
# Random draws an fx graph of a head can hold (call_function / call_method names).
RANDOM_OPS = frozenset({"rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm",
                        "bernoulli", "bernoulli_", "normal", "normal_", "uniform_", "exponential_", "poisson",
                        "multinomial", "random_", "geometric_", "cauchy_", "log_normal_"})
# Replay against the eager call on the capture batch (fp32: cuDNN may pick other kernels in a graph).
TOLERANCE = {"float32": (1e-4, 1e-4), "float16": (1e-2, 1e-2)}


def requested_label(requested: bool | None) -> str:
    return {None: "auto", True: "on", False: "off"}[requested]


def random_ops(head) -> list[str]:
    """Names of the random draws in a head's fx graph (empty for a deterministic head or a non-fx module)."""
    graph = getattr(head, "graph", None)
    found: list[str] = []
    for node in getattr(graph, "nodes", ()):
        if node.op == "call_function":
            name = getattr(node.target, "__name__", str(node.target))
        elif node.op == "call_method":
            name = str(node.target)
        else:
            continue
        if name in RANDOM_OPS and name not in found:
            found.append(name)
    return found


def graph_plan(head, requested: bool | None, stochastic: bool = False) -> tuple[str, str | None]:
    """(mode, reason) before any capture: "graph" where one will be tried, "eager" with why not.

    `requested`: None (auto: graphs where capture works), True (graphs or a BackendError), False (eager).
    `stochastic`: the bundle's manifest says the head draws random numbers (its ONNX graph has Random* nodes)."""
    if requested is False:
        return EAGER, "eager calls asked for (--no-cuda-graph)"
    ops = random_ops(head) or (["Random* nodes in its ONNX graph"] if stochastic else [])
    if ops:
        reason = (f"the head draws random numbers ({', '.join(ops)}): a stochastic head (a noise or dropout "
                  f"defense) is timed eagerly, drawing afresh each call as the shipped head does")
        if requested:
            raise BackendError(f"--cuda-graph: this head cannot be captured as a CUDA graph: {reason}; "
                               f"drop --cuda-graph (the default times it eagerly and records why)")
        return EAGER, reason
    return GRAPH, None


@dataclass
class CapturedGraph:
    graph: object  # torch.cuda.CUDAGraph
    static_input: object  # torch.Tensor the replay reads
    static_output: object  # torch.Tensor every replay rewrites

    def replay(self):
        self.graph.replay()
        return self.static_output


class CaptureFailed(Exception):
    """Why a capture did not give a usable graph (one line); the runner falls back or raises BackendError."""


def capture_graph(head, x, warmup: int = CAPTURE_WARMUP) -> CapturedGraph:
    """Capture `head(x)` (a CUDA module and a CUDA tensor) as a graph with static buffers, replay it once and
    compare with the eager call; CaptureFailed with the first line of the error otherwise."""
    import torch

    static_input = x.clone()
    generator = torch.cuda.default_generators[x.device.index or 0]
    # A capture registers the default generator; one that fails before its end leaves it "capturing", and
    # every later random draw on the GPU fails ("Offset increment outside graph capture"): keep a copy to
    # put back (torch >= 2.4; older ones have no graph-safe state and are left as they are).
    backup = generator.clone_state() if hasattr(generator, "clone_state") else None
    # torch.cuda.graph's exit ends the capture before it leaves the capture stream: a capture that fails at its
    # end would leave this thread on that stream for everything after (eager timing, training). Put it back.
    stream = torch.cuda.current_stream(x.device)
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.stream(side):
            for _ in range(warmup):
                head(static_input)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            static_output = head(static_input)
        graph.replay()
        with torch.no_grad():
            eager = head(static_input)
        torch.cuda.synchronize()
    except Exception as exc:  # a capture error names the op that cannot be recorded (a host sync, a CPU tensor)
        torch.cuda.set_stream(stream)
        _settle(torch)
        if backup is not None:
            with contextlib.suppress(Exception):
                generator.graphsafe_set_state(backup)
        if isinstance(exc, torch.OutOfMemoryError):
            raise  # memory, not the head: the caller's out-of-memory advice (a smaller batch) applies
        # the capture's end reports only "a previous error during capture": the op that broke it is the context
        cause = exc.__context__ if exc.__context__ is not None and "capture" in str(exc) else exc
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise CaptureFailed(f"capture failed ({type(cause).__name__}: {text[:200]})") from None
    rtol, atol = TOLERANCE.get(str(static_output.dtype).removeprefix("torch."), (1e-4, 1e-4))
    if static_output.shape != eager.shape or not torch.allclose(static_output.float(), eager.float(), rtol, atol):
        diff = (static_output.float() - eager.float()).abs().max().item() if static_output.shape == eager.shape \
            else float("nan")
        raise CaptureFailed(f"the replayed graph differs from the eager call (max abs difference {diff:.3g})")
    return CapturedGraph(graph, static_input, static_output)


def _settle(torch) -> None:
    """After a failed capture: wait for the device, ignoring the error a broken capture may leave behind."""
    with contextlib.suppress(Exception):
        torch.cuda.synchronize()


# A window's calls are queued in chunks, one synchronise after each: the first chunk is one call, each next one
# at most GROWTH times the one before and at most CHUNK_SHARE of the window at the per-call time measured so far,
# and no more than still fit before the window's end. So a window of GPU-bound calls ends within its time (plus
# one call, and CHUNK_SHARE of the window if calls suddenly run slower), not after every queued call has run (a
# single sync at the end let 256 queued 10 ms calls run 2.56 s past a 0.25 s window); and it syncs about
# log2(calls) + 1 / CHUNK_SHARE times, not once per call (a sync per call would make the figure the round trip's).
GROWTH = 2
CHUNK_SHARE = 0.25
# Eager calls are timed in blocks: one CUDA event every block of about this long, each call's figure its block's
# mean. A launch-bound eager call's span is host time (the GPU waits for the launches), so an event recorded
# between every two calls adds its own host cost (a few microseconds, so several per cent of a 0.07 ms head:
# estimated, not measured) to every figure; and the per-call p50 of a launch-bound loop can sit below its mean
# (the host's hiccups are a right tail) while the peer's blocks include them. Block
# means are what torch.utils.benchmark's blocked_autorange takes the median of (its blocks: a sync and a clock
# read either side of enough calls to make that overhead negligible), so eager rows now measure what it does.
# Graph replays keep one event per call: a replay is GPU-bound, one launch, and its spans are the GPU's times.
EAGER_BLOCK_SECONDS = 0.01


class EventWindows:
    """Times a window of calls with CUDA events queued between them, read after a synchronise per chunk.

    Within a chunk the calls follow each other on the GPU's stream as a timeit loop's do: one event before the
    first call and one after every `stride` calls (call spans between consecutive events, so no per-call host
    synchronise adds its round trip, as in `torch.utils.benchmark`). No span crosses a synchronise: each chunk
    starts with an event of its own. The window runs under no_grad; `clock` is the host's (tests pass a fake)."""

    def __init__(self, torch, clock: Callable[[], float] = time.perf_counter) -> None:
        self.torch, self.clock = torch, clock
        self.events: list = []
        self.syncs = 0  # synchronises so far (tests read it)

    def _event(self, i: int):
        while len(self.events) <= i:
            self.events.append(self.torch.cuda.Event(enable_timing=True))
        return self.events[i]

    def time(self, call, calls: int, seconds: float, block_seconds: float = 0.0) -> list[float]:
        """Seconds of each of up to `calls` calls, ending before `seconds` would be passed (at least one call).

        `block_seconds` > 0: events every block of about that long (each call's figure its block's mean);
        0: an event after every call."""
        clock = self.clock
        out: list[float] = []
        start = clock()
        chunk = stride = 1  # the first call's cost is unknown: one call, then sync and measure
        with self.torch.no_grad():
            while len(out) < calls:
                chunk = min(chunk, calls - len(out))
                out.extend(self._chunk(call, chunk, min(stride, chunk)))
                now = clock()
                per_call = max((now - start) / len(out), 1e-9)  # host wall time, syncs included
                fits = int((start + seconds - now) / per_call)
                if fits < 1:
                    break
                if block_seconds > 0:
                    stride = max(1, int(block_seconds / per_call))
                chunk = max(1, min(chunk * GROWTH, int(CHUNK_SHARE * seconds / per_call), fits))
                if chunk > stride:
                    chunk -= chunk % stride  # whole blocks
        return out

    def _chunk(self, call, n: int, stride: int) -> list[float]:
        """`n` calls with an event before the first and after every `stride`, then one synchronise. The events
        exist before the first is recorded: nothing but calls and records runs between two events."""
        sizes = [stride] * (n // stride) + ([n % stride] if n % stride else [])
        self._event(len(sizes))
        events = self.events
        events[0].record()
        for i, size in enumerate(sizes, 1):
            for _ in range(size):
                call()
            events[i].record()
        events[len(sizes)].synchronize()
        self.syncs += 1
        out: list[float] = []
        for i, size in enumerate(sizes):
            out.extend([events[i].elapsed_time(events[i + 1]) * 1e-3 / size] * size)
        return out


def cudnn_version_text(version: int | None) -> str | None:
    """cuDNN's integer version as text: 90100 -> "9.1.0" (cuDNN 9 and later), 8902 -> "8.9.2" (before)."""
    if not version:
        return None
    if version >= 10000:
        return f"{version // 10000}.{version % 10000 // 100}.{version % 100}"
    return f"{version // 1000}.{version % 1000 // 100}.{version % 100}"


def torch_gpu_uuid(torch, device_index: int) -> str | None:
    """The UUID of CUDA device `device_index` as torch sees it ("8c3e...", no "GPU-" prefix), None where this
    torch does not report one: what `devices.nvml.find_gpu` matches against NVML's GPUs."""
    with contextlib.suppress(Exception):
        uuid = getattr(torch.cuda.get_device_properties(device_index), "uuid", None)
        return str(uuid) if uuid is not None and str(uuid).strip() else None
    return None


def torch_gpu_versions(torch, device_index: int = 0) -> dict:
    """The GPU and the versions a torch-cuda figure depends on: name, capability, UUID, torch, CUDA, cuDNN."""
    major, minor = torch.cuda.get_device_capability(device_index)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"name": torch.cuda.get_device_name(device_index), "compute_capability": f"{major}.{minor}",
            "device_index": device_index, "uuid": torch_gpu_uuid(torch, device_index),
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": cudnn_version_text(cudnn),
            "fp32_math": fp32_math(torch)}


def fp32_math(torch) -> dict:
    """How this torch computes fp32 convolutions and matmuls on the GPU: 'tf32' (10-bit mantissa products, cuDNN
    convolutions' default) or 'ieee'; an fp32 row's figure depends on it (Ampere and later)."""
    conv, matmul = getattr(torch.backends.cudnn, "conv", None), getattr(torch.backends.cuda, "matmul", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # torch >= 2.9's settings ('none': the legacy flag)
        out = {}
        for name, setting, legacy in (("conv", conv, lambda: torch.backends.cudnn.allow_tf32),
                                      ("matmul", matmul, lambda: matmul.allow_tf32)):
            out[name] = setting.fp32_precision
            if out[name] == "none":
                with contextlib.suppress(RuntimeError):  # torch refuses to read a legacy flag set both ways
                    out[name] = "tf32" if legacy() else "ieee"
        return out
    return {"conv": "tf32" if torch.backends.cudnn.allow_tf32 else "ieee",
            "matmul": "tf32" if matmul.allow_tf32 else "ieee"}
