"""onnxruntime backends: CPU, CUDA and TensorRT execution providers (`ort`, `ort-cuda`, `ort-trt`)."""

from __future__ import annotations

import numpy as np

from edgesplit.errors import BackendError
from edgesplit.runtime.backends.base import Backend

PROVIDERS = {
    "ort": ["CPUExecutionProvider"],
    "ort-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "ort-trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
_INSTALL = {"ort": "pip install onnxruntime",
            "ort-cuda": "install onnxruntime-gpu (on a Jetson: NVIDIA's Jetson wheel)",
            "ort-trt": "install onnxruntime-gpu built with TensorRT, and TensorRT itself (JetPack on a Jetson)"}


class OrtBackend(Backend):
    def __init__(self, name: str = "ort", threads: int | None = None) -> None:
        super().__init__(threads)
        if name not in PROVIDERS:
            raise BackendError(f"unknown onnxruntime backend {name!r}: use one of {', '.join(PROVIDERS)}")
        self.name = name
        self.session = None

    def _load(self, bundle) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendError(f"onnxruntime is not installed: {_INSTALL['ort']}") from None
        wanted = PROVIDERS[self.name]
        if wanted[0] not in ort.get_available_providers():
            raise BackendError(f"this onnxruntime has no {wanted[0]} (it has {', '.join(ort.get_available_providers())})"
                               f": {_INSTALL[self.name]}, or use --backend ort")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.inter_op_num_threads = 1
        if self.threads:
            options.intra_op_num_threads = self.threads
        if bundle.manifest.get("stochastic"):
            # onnxruntime's Random* ops otherwise start every new session from the same default seed: a
            # device would repeat one noise sequence after each restart, which an attacker could learn.
            import secrets

            ort.set_seed(secrets.randbits(31))
        self.session = ort.InferenceSession(str(bundle.onnx_path), options, providers=wanted)
        self.input_name = self.session.get_inputs()[0].name
        self._ort = ort

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
