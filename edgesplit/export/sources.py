"""Where a head comes from, as export needs it: the FP32 head graph, the reference it is checked against, the
tail that scores it, and what the manifest says about its origin.

- `TorchHead`: a PyTorch model cut with `models.split`; the head is exported on its own with torch.onnx, the
  reference and the tail are the PyTorch modules. Needed for what only PyTorch has: defenses inserted at the
  cut (stochastic heads, server-side restore modules), and models whose whole graph does not export.
- `GraphHead`: an ONNX graph cut at a tensor (`models.onnx_split`), from a shipped ONNX file or from a
  PyTorch model exported once as a whole (`GraphHead.from_torch`). The reference is onnxruntime running the
  FP32 head, the tail onnxruntime running the rest: no PyTorch is involved. One `GraphHead` serves every
  precision of its cut, and it computes the reference features and tail logits on held-out images once; the
  cuts of one graph in a sweep share one `graph_reference.GraphReference` (a pass of the graph serves several
  cuts, and the model's logits are computed once).
"""

from __future__ import annotations

import tempfile
import weakref
from pathlib import Path

import numpy as np
import onnx

from edgesplit.errors import ExportError
from edgesplit.export.graph_reference import BATCH, array_digest
from edgesplit.export.onnx_export import INPUT_NAME, OUTPUT_NAME


class HeadSource:
    """The interface export uses; subclasses fill in where the head and its reference come from."""

    cut = None  # models.CutPoint
    input_shape: tuple[int, int, int]
    spec = None  # models.ModelSpec of a PyTorch model, or None (the head has no PyTorch source)

    def write_fp32_head(self, path: Path, opset: int) -> Path:
        raise NotImplementedError

    _memo: tuple[str, np.ndarray, np.ndarray] | None = None

    def reference(self, images: np.ndarray) -> np.ndarray:
        """FP32 features of the reference head for `images` (N, C, H, W float32), computed once per image set."""
        return self._reference_pair(images)[0]

    def reference_logits(self, images: np.ndarray) -> np.ndarray:
        """The tail's logits on the reference features of `images`, computed once per image set."""
        return self._reference_pair(images)[1]

    def _reference_pair(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = array_digest(images)
        if self._memo is None or self._memo[0] != key:
            features = self._reference(images)
            self._memo = (key, features, self.tail_logits(features))
        return self._memo[1], self._memo[2]

    def _reference(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reference_graph(self) -> Path | None:
        """The reference head as an ONNX file, where the reference is one (None: a PyTorch reference)."""
        return None

    def tail_logits(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def model_record(self) -> dict:
        """The manifest's `model` record."""
        raise NotImplementedError


class TorchHead(HeadSource):
    """A PyTorch model's head exported on its own (the per-cut path)."""

    def __init__(self, model, cut: str, model_record: dict) -> None:
        import torch

        from edgesplit.models import split

        self.spec = model.edgesplit_spec
        self.input_shape = (self.spec.in_chans, self.spec.img_size, self.spec.img_size)
        self.parts = split(model, cut, example_input=torch.zeros(1, *self.input_shape))
        self.cut = self.parts.cut
        self._record = model_record

    def write_fp32_head(self, path: Path, opset: int) -> Path:
        import torch

        from edgesplit.export.onnx_export import export_onnx

        return export_onnx(self.parts.head, torch.zeros(1, *self.input_shape), path, opset)

    def _reference(self, images: np.ndarray) -> np.ndarray:
        return _torch_batches(self.parts.head, images)

    def tail_logits(self, features: np.ndarray) -> np.ndarray:
        return _torch_batches(self.parts.tail, features)

    def model_record(self) -> dict:
        return self._record


class GraphHead(HeadSource):
    """An ONNX graph cut at one tensor; onnxruntime runs the reference head and the tail."""

    def __init__(self, analysis, cut: str, model_record: dict, source: dict, reference=None) -> None:
        from edgesplit.models.onnx_split import split_onnx

        self.cut = analysis.resolve(cut)
        self.input_shape = tuple(analysis.input_shape)
        head, tail = split_onnx(analysis, self.cut)
        self._folder = Path(tempfile.mkdtemp(prefix="edgesplit-graph-head-"))
        weakref.finalize(self, _remove, self._folder)
        self._head = self._folder / "head_fp32.onnx"
        self._tail = self._folder / "tail.onnx"
        _save(_renamed(head, analysis.input_name, self.cut.name), self._head)
        _save(tail, self._tail)
        self._tail_input = self.cut.name
        self._record = {**model_record, "graph": source}
        self._sessions: dict[Path, object] = {}
        self._shared = reference  # a GraphReference of the whole graph, shared with the other cuts; or None

    @classmethod
    def from_file(cls, path: str | Path, cut: str, input_shape: tuple[int, int, int] | None = None,
                  analysis=None, reference=None) -> GraphHead:
        """A shipped ONNX file cut at `cut`; the manifest names the file and its sha256, never its folder.
        `reference`: a `GraphReference` of the file shared by its cuts (a sweep's), else this cut's own."""
        from onnx.external_data_helper import ExternalDataInfo

        from edgesplit.digest import sha256_file
        from edgesplit.models.onnx_cuts import analyse_onnx
        from edgesplit.models.onnx_graph import external_tensors, fixed_batch

        path = Path(path)
        analysis = analysis or analyse_onnx(path, input_shape)
        if refusal := fixed_batch(analysis.model, path.name):
            raise ExportError(refusal)
        sha = sha256_file(path)
        data = sorted({ExternalDataInfo(t).location for t in external_tensors(analysis.model)})
        record = {"name": f"onnx:{path.stem}", "spec": None, "weights": f"shipped onnx {sha}", "checkpoint": None,
                  "checkpoint_sha256": None}
        source = {"file": path.name, "sha256": sha, "cut_tensor": analysis.resolve(cut).name,
                  "external_data": {name: sha256_file(path.parent / name) for name in data}}
        return cls(analysis, cut, record, source, reference)

    @classmethod
    def from_torch(cls, whole, cut: str, model_record: dict, spec) -> GraphHead:
        """A cut of a PyTorch model exported once as a whole (`onnx_export.export_whole_model`)."""
        head = cls(whole.analysis, whole.tensor_of(cut), model_record,
                   {"sha256": whole.sha256, "cut_tensor": whole.tensor_of(cut), "exported": "whole model, once"},
                   whole.reference)
        head.spec = spec
        head.cut = whole.cut_point(cut)  # the PyTorch cut's name and costs, as the per-cut path records them
        return head

    def write_fp32_head(self, path: Path, opset: int) -> Path:
        path.write_bytes(self._head.read_bytes())
        return path

    def _reference_pair(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._shared is None:
            return super()._reference_pair(images)
        return self._shared.features(self._tail_input, images), self._shared.logits(images)

    def _reference(self, images: np.ndarray) -> np.ndarray:
        return self._run(self._head, INPUT_NAME, images)

    def reference_graph(self) -> Path:
        return self._head

    def tail_logits(self, features: np.ndarray) -> np.ndarray:
        return self._run(self._tail, self._tail_input, features.astype(np.float32, copy=False))

    def model_record(self) -> dict:
        return self._record

    def _run(self, path: Path, name: str, x: np.ndarray) -> np.ndarray:
        from edgesplit.runners.onnxrt import ort_session, run_in_batches

        if path not in self._sessions:
            self._sessions[path] = ort_session(path)
        return run_in_batches(self._sessions[path], x, BATCH, name)[0]


def _torch_batches(module, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        module = module.eval()
        return np.concatenate([module(torch.from_numpy(np.ascontiguousarray(x[i: i + BATCH])).float()).numpy()
                               for i in range(0, len(x), BATCH)])


def _renamed(model: onnx.ModelProto, old_input: str, old_output: str) -> onnx.ModelProto:
    """The head with its input called INPUT_NAME and its output OUTPUT_NAME, as every bundle's head is."""
    renames = {old_input: INPUT_NAME, old_output: OUTPUT_NAME}
    clash = [n for n in (INPUT_NAME, OUTPUT_NAME) if n not in renames and _uses(model, n)]
    if clash:
        raise ExportError(f"the ONNX model already has a tensor called {clash[0]!r}: rename it and export again")
    graph = model.graph
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info):
        value.name = renames.get(value.name, value.name)
    return model


def _uses(model: onnx.ModelProto, name: str) -> bool:
    return any(name in n.input or name in n.output for n in model.graph.node)


def _save(model: onnx.ModelProto, path: Path) -> None:
    if model.ByteSize() >= onnx.checker.MAXIMUM_PROTOBUF:
        raise ExportError(f"this part of the model is over 2 GiB ({model.ByteSize() >> 20} MiB): cut earlier, "
                          f"so the head fits one ONNX file")
    onnx.save(model, str(path))


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
