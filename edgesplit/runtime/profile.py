"""`profile_bundle`: Measurement rows for a bundle on one backend, per batch size, with memory beside a baseline."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial

import numpy as np

from edgesplit.export.bundle import load_bundle
from edgesplit.progress import Progress, resolve
from edgesplit.runners import get_runner
from edgesplit.runtime.environment import environment, gpu_record
from edgesplit.runtime.measurement import measurement_row
from edgesplit.runtime.memory import check_batch_fits, out_of_memory_advice
from edgesplit.runtime.timing import TimingConfig, time_runner


def profile_bundle(bundle_path, backend: str = "ort", batches=(1,), timing: TimingConfig | None = None,
                   threads: int | None = None, checkpoint: str | None = None, progress: Progress | None = None,
                   on_row: Callable[[dict], None] | None = None, cuda_graph: bool | None = None,
                   samplers: bool = True) -> list[dict]:
    """Verify the bundle, then for each batch: load, time, measure memory; `on_row` gets each row at once.

    `cuda_graph` is torch-cuda's graph mode (None: graphs where capture works). The samplers (RSS, and NVML or
    tegrastats where present) start no thread: they sample between timed windows only; `samplers=False` runs
    none (the benchmark's control). Every batch's input and output must fit in the memory available before the
    first is run; an allocator failure while running one (the head's activations) is a BackendError with the fix.
    """
    from edgesplit.devices.samplers import window_samplers

    timing = timing or TimingConfig()
    bundle = load_bundle(bundle_path)  # refuses a bundle whose files do not match
    env = environment()
    shape = tuple(bundle.input["shape"][1:])
    for batch in batches:
        check_batch_fits(bundle, batch)
    # a wrong option: before any work; the GPU it will time (None on the CPU), so NVML samples that one
    gpu = get_runner(backend, threads, checkpoint=checkpoint, cuda_graph=cuda_graph).cuda_device()
    rows = []
    for batch in batches:
        with out_of_memory_advice(batch):
            images = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
        active = window_samplers(gpu) if samplers else []
        with contextlib.ExitStack() as started:  # a sampler that fails to start stops the ones already started
            for s in active:
                started.enter_context(s)
            runner = get_runner(backend, threads, checkpoint=checkpoint, cuda_graph=cuda_graph)
            with runner, out_of_memory_advice(batch):
                runner.load(bundle)
                samples = time_runner(runner, images, timing, progress,
                                      between=partial(_sample_each, active))
                info, device_memory = runner.info(), runner.memory()
                load_seconds = runner.load_seconds
        memory = {"baseline": "process RSS just before the backend loaded the bundle", **device_memory}
        summaries = {s.name: s.summary() for s in active}
        for name, summary in summaries.items():  # namespaced: rss_peak_above_baseline_bytes, nvml_peak_bytes, ...
            memory.update({f"{name}_{k}": v for k, v in summary.items() if k not in ("sampler", "samples")})
        settings = {**timing.to_dict(), "threads": threads, "input": "uniform [0, 1) noise",
                    "samplers": {name: summary.get("mode") for name, summary in summaries.items()}}
        if backend == "torch-cuda":
            settings["cuda_graph"] = info.get("capture", {}).get("requested")
        row = measurement_row(bundle=bundle, backend_info=info, batch=batch, samples_s=samples,
                              load_seconds=load_seconds, memory=memory, environment=env, settings=settings,
                              gpu=gpu_record(backend, info, summaries.get("nvml")))
        rows.append(row)
        if on_row is not None:
            on_row(row)
    resolve(progress).message(f"profiled {bundle.path.name} on {backend}: {len(rows)} row(s)")
    return rows


def _sample_each(samplers: list) -> None:
    for s in samplers:
        s.sample()
