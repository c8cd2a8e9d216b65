"""The FP32 reference of every cut of one ONNX graph, shared by the cuts: features and logits on held-out images.

Each cut's fidelity check compares the exported head with the FP32 head on held-out images, and scores both
with the tail. Computed per cut, that is one pass of the whole model per cut (the reference head, then the tail
on its features) — for ten cuts, ten passes, most of a no-audit sweep's time on a CPU. Here onnxruntime runs the
graph once from its input to a *group* of consecutive cuts (`models.onnx_split.extract_onnx`), as many as fit a
memory budget, and the model's own logits once: the tail on a cut's FP32 features is the model, whichever the
cut. Same nodes, same weights, same runtime as each cut's head: the features are the ones the head gives.

    reference = GraphReference(analysis, ["/layer1/Relu", "/layer2/Relu", ...])
    reference.features("/layer2/Relu", images)   # runs the graph up to a group of cuts, once per image set
    reference.logits(images)                     # the whole model's first output, once per image set
"""

from __future__ import annotations

import hashlib
import tempfile

import numpy as np
import onnx

from edgesplit.hostmemory import available_bytes

BATCH = 64  # images per run of a reference, a tail or a head over a split (sources and fidelity too)
BUDGET = 1 << 30  # bytes of features held at once, at most (and at most a quarter of the memory available)


def array_digest(x: np.ndarray) -> str:
    """What identifies an image set: the sha256 of its bytes, and its shape."""
    return hashlib.sha256(np.ascontiguousarray(x).view(np.uint8)).hexdigest() + str(x.shape)


class GraphReference:
    """FP32 features at `tensors` (legal cut tensors of `analysis`, in the order they will be asked for) and the
    graph's logits, for one image set at a time."""

    def __init__(self, analysis, tensors: list[str], budget: int | None = None) -> None:
        self.analysis = analysis
        self.tensors = list(dict.fromkeys(tensors))
        available = available_bytes()
        self.budget = budget if budget is not None else min(BUDGET, (available or 4 * BUDGET) // 4)
        self.runs = 0  # onnxruntime passes over the image set so far (what the sharing saves is visible)
        self._key: str | None = None
        self._features: dict[str, np.ndarray] = {}
        self._logits: np.ndarray | None = None

    def features(self, tensor: str, images: np.ndarray) -> np.ndarray:
        """The FP32 features at `tensor` for `images` (N, C, H, W float32)."""
        self._same_images(images)
        if tensor not in self._features:
            self._features = {}  # one group at a time: the previous group's features are dropped
            self._run(self._group(tensor, len(images)), images)
        return self._features[tensor]

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The graph's first output (the model's logits) for `images`."""
        self._same_images(images)
        if self._logits is None:
            self._run([], images)
        return self._logits

    def _same_images(self, images: np.ndarray) -> None:
        key = array_digest(images)
        if key != self._key:
            self._key, self._features, self._logits = key, {}, None

    def _group(self, tensor: str, n: int) -> list[str]:
        """`tensor` and the cuts after it in order, while their features for `n` images fit the budget."""
        order = self.tensors if tensor in self.tensors else [tensor]
        group, size = [], 0
        for name in order[order.index(tensor):]:
            size += 4 * n * self.analysis.resolve(name).numel
            if group and size > self.budget:
                break
            group.append(name)
        return group

    def _run(self, tensors: list[str], images: np.ndarray) -> None:
        from edgesplit.models.onnx_split import extract_onnx
        from edgesplit.runners.onnxrt import ort_session, run_in_batches

        logits = [] if self._logits is not None else [self.analysis.model.graph.output[0].name]
        graph = extract_onnx(self.analysis, [*tensors, *logits])
        with tempfile.TemporaryDirectory(prefix="edgesplit-reference-") as folder:
            if graph.ByteSize() < onnx.checker.MAXIMUM_PROTOBUF:
                session = ort_session(graph.SerializeToString())
            else:  # over protobuf's 2 GiB: weights beside the graph, as the model itself keeps them
                onnx.save(graph, f"{folder}/reference.onnx", save_as_external_data=True)
                session = ort_session(f"{folder}/reference.onnx")
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, run_in_batches(session, images, BATCH, self.analysis.input_name, np.float32),
                           strict=True))
        self._features = {t: outputs[t] for t in tensors}
        if logits:
            self._logits = outputs[logits[0]]
        self.runs += 1
