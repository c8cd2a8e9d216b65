"""`profile_bundle`: Measurement rows for a bundle on one backend, per batch size, with memory beside a baseline."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgesplit.export.bundle import load_bundle
from edgesplit.progress import Progress, resolve
from edgesplit.runners import get_runner
from edgesplit.runtime.environment import environment
from edgesplit.runtime.measurement import measurement_row
from edgesplit.runtime.memory import check_batch_fits, out_of_memory_advice
from edgesplit.runtime.timing import TimingConfig, time_runner


def profile_bundle(bundle_path, backend: str = "ort", batches=(1,), timing: TimingConfig | None = None,
                   threads: int | None = None, checkpoint: str | None = None, progress: Progress | None = None,
                   on_row: Callable[[dict], None] | None = None) -> list[dict]:
    """Verify the bundle, then for each batch: load, time, measure memory; `on_row` gets each row at once.

    Every batch's input and output must fit in the memory available before the first is run; an allocator
    failure while running one (the head's activations) is a BackendError with the fix."""
    from edgesplit.devices.samplers import NvmlSampler, RssSampler, TegrastatsSampler

    timing = timing or TimingConfig()
    bundle = load_bundle(bundle_path)  # refuses a bundle whose files do not match
    env = environment()
    shape = tuple(bundle.input["shape"][1:])
    for batch in batches:
        check_batch_fits(bundle, batch)
    rows = []
    for batch in batches:
        with out_of_memory_advice(batch):
            images = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
        samplers = [RssSampler()]
        if NvmlSampler.available():
            samplers.append(NvmlSampler())
        if TegrastatsSampler.available():
            samplers.append(TegrastatsSampler())
        for s in samplers:
            s.__enter__()
        try:
            runner = get_runner(backend, threads, checkpoint=checkpoint)
            with runner, out_of_memory_advice(batch):
                runner.load(bundle)
                samples = time_runner(runner, images, timing, progress)
                info, device_memory = runner.info(), runner.memory()
                load_seconds = runner.load_seconds
        finally:
            for s in reversed(samplers):
                s.__exit__(None, None, None)
        memory = {"baseline": "process RSS just before the backend loaded the bundle", **device_memory}
        for s in samplers:  # namespaced: rss_peak_above_baseline_bytes, nvml_peak_bytes, tegrastats_...
            memory.update({f"{s.name}_{k}": v for k, v in s.summary().items() if k not in ("sampler", "samples")})
        row = measurement_row(bundle=bundle, backend_info=info, batch=batch, samples_s=samples,
                              load_seconds=load_seconds, memory=memory, environment=env,
                              settings={**timing.to_dict(), "threads": threads, "input": "uniform [0, 1) noise"})
        rows.append(row)
        if on_row is not None:
            on_row(row)
    resolve(progress).message(f"profiled {bundle.path.name} on {backend}: {len(rows)} row(s)")
    return rows
