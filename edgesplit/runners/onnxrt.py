"""onnxruntime: the one session loader, and the runners on its CPU, CUDA and TensorRT execution providers
(`ort`, `ort-cuda`, `ort-trt`). Export's fidelity check opens its sessions here too."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesplit.errors import BackendError
from edgesplit.runners.base import Runner

CPU = "CPUExecutionProvider"
PROVIDERS = {
    "ort": [CPU],
    "ort-cuda": ["CUDAExecutionProvider", CPU],
    "ort-trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", CPU],
}
# What to install when onnxruntime, or the provider a runner needs first, is missing.
_INSTALL = {CPU: "pip install onnxruntime",
            "CUDAExecutionProvider": "install onnxruntime-gpu (on a Jetson: NVIDIA's Jetson wheel)",
            "TensorrtExecutionProvider": "install onnxruntime-gpu built with TensorRT, and TensorRT itself (JetPack "
                                         "on a Jetson)"}


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise BackendError(f"onnxruntime is not installed: {_INSTALL[CPU]}") from None
    return onnxruntime


def ort_session(path: str | Path | bytes, providers=(CPU,), threads: int | None = None,
                inter_op_threads: int | None = None, log_level: int = 3, seed: int | None = None,
                profile_prefix: str | None = None):
    """An `InferenceSession` for the ONNX file at `path` (or a serialized model) on `providers` (the first must be
    available).

    `threads`: intra-op threads (None: onnxruntime's default); `inter_op_threads` likewise; `seed` seeds
    onnxruntime's Random* ops (process-wide) before the session is made. Intra-op workers keep onnxruntime's
    default (they spin after a run), as heads run when deployed. `profile_prefix`: onnxruntime's node-level
    profiler on, its trace written under that prefix (`session.end_profiling()` returns the file)."""
    ort = import_onnxruntime()
    providers = list(providers)
    available = ort.get_available_providers()
    if providers[0] not in available:
        raise BackendError(f"this onnxruntime has no {providers[0]} (it has {', '.join(available)})"
                           f": {_INSTALL.get(providers[0], 'install an onnxruntime that has it')}, or use --backend ort")
    options = ort.SessionOptions()
    options.log_severity_level = log_level
    if inter_op_threads:
        options.inter_op_num_threads = inter_op_threads
    if threads:
        options.intra_op_num_threads = threads
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if seed is not None:
        ort.set_seed(seed)
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, options, providers=providers)


def run_in_batches(session, x: np.ndarray, batch: int = 64, name: str | None = None,
                   dtype=None) -> list[np.ndarray]:
    """Every output of `session` for the samples `x`, fed `batch` at a time (to `name`, the first input by default;
    cast to `dtype` if given), each concatenated along the batch."""
    name = name or session.get_inputs()[0].name
    runs = [session.run(None, {name: x[i: i + batch] if dtype is None else x[i: i + batch].astype(dtype)})
            for i in range(0, len(x), batch)]
    return [np.concatenate([run[k] for run in runs]) for k in range(len(runs[0]))]


def unavailable(backend: str, precision: str, bundle=None) -> str | None:
    """Why the onnxruntime runner `backend` cannot run here (every precision runs where its provider does)."""
    first = PROVIDERS[backend][0]
    if first == CPU:
        return None
    ort = import_onnxruntime()
    if first not in ort.get_available_providers():
        return f"this onnxruntime has no {first} (needs onnxruntime-gpu on a CUDA machine)"
    return None


class OrtRunner(Runner):
    def __init__(self, name: str = "ort", threads: int | None = None) -> None:
        super().__init__(threads)
        if name not in PROVIDERS:
            raise BackendError(f"unknown onnxruntime backend {name!r}: use one of {', '.join(PROVIDERS)}")
        self.name = name
        self.session = None

    def _load(self, bundle) -> None:
        seed = None
        if bundle.manifest.get("stochastic"):
            # onnxruntime's Random* ops otherwise start every new session from the same default seed: a
            # device would repeat one noise sequence after each restart, which an attacker could learn.
            import secrets

            seed = secrets.randbits(31)
        self.session = ort_session(bundle.onnx_path, PROVIDERS[self.name], self.threads, inter_op_threads=1,
                                   seed=seed)
        self.input_name = self.session.get_inputs()[0].name
        self._ort = import_onnxruntime()

    def bind(self, images: np.ndarray):
        session, feed = self.session, {self.input_name: images}
        return lambda: session.run(None, feed)[0]

    def info(self) -> dict:
        out = {"backend": self.name, "threads": self.threads or "onnxruntime default"}
        if self.session is not None:
            out.update(runtime="onnxruntime", version=self._ort.__version__, providers=self.session.get_providers())
        return out

    def release(self) -> None:
        self.session = None
        super().release()


class OnnxFileRunner(Runner):
    """A plain ONNX file (a server tail, a whole shipped model) on onnxruntime's CPU provider, behind the runner
    calls the timing loop uses (as `pytorch.ModuleRunner` for a module): no bundle, float32 in, any batch."""

    name = "ort-server"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        super().__init__(threads)
        self.session = ort_session(path, [CPU], threads, inter_op_threads=1)
        self.input_name = self.session.get_inputs()[0].name

    def prepare(self, images: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(images, dtype=np.float32)

    def bind(self, images: np.ndarray):
        session, feed = self.session, {self.input_name: images}
        return lambda: session.run(None, feed)[0]

    def info(self) -> dict:
        return {"backend": self.name, "threads": self.threads or "onnxruntime default", "runtime": "onnxruntime",
                "version": import_onnxruntime().__version__}

    def release(self) -> None:
        self.session = None
        super().release()
