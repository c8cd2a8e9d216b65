"""A shipped ONNX model in a sweep (`[[sweep.models]] onnx = "model.onnx"`): what its steps do.

Its cuts are tensors of the graph, resolved by `models.onnx_cuts.analyse_onnx` before any step (`resolve_onnx`).
The tail step times the ONNX tail after each cut (and the whole file, the "input" option) with onnxruntime;
the export step cuts each head from the file (`export.sources.GraphHead.from_file`, one per cut, shared by its
precisions); profile, emit and audit run on the bundles as on any other. Train and defend do not apply (the
spec refuses them), nor the torch backends (skipped: no PyTorch model to rebuild). Rows keep the schema:
`model` is the entry's name, `cut` the tensor's name; files are named after the tensor (`file_name`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgesplit.bench.spec import SweepModel, SweepSpec
from edgesplit.bench.sweep_steps import SweepSteps, slug
from edgesplit.errors import BenchError, ModelError
from edgesplit.progress import Progress


def resolve_onnx(entry: SweepModel):
    """(analysis, cut names) of an ONNX entry: the file loads and checks, its input is known and square, every
    cut named is a legal tensor; or one BenchError line."""
    from edgesplit.models.onnx_cuts import analyse_onnx

    try:
        analysis = analyse_onnx(entry.onnx_path, entry.input_shape)
        cuts = analysis.blocks if entry.cuts == "blocks" else [analysis.resolve(n) for n in entry.cuts]
    except ModelError as exc:  # CutError included
        raise BenchError(f"model {entry.name}: {_spec_words(str(exc))}") from None
    from edgesplit.models.onnx_graph import fixed_batch

    if refusal := fixed_batch(analysis.model, entry.onnx_path.name):  # heads, tails and references: many images
        raise BenchError(f"model {entry.name}: {refusal}")
    shape = tuple(analysis.input_shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise BenchError(f"model {entry.name}: {entry.onnx_path.name} takes {'x'.join(map(str, shape))} images; "
                         f"a sweep feeds square C x H x H images (its data sets are square)")
    if not cuts:
        raise BenchError(f"model {entry.name} has no block cuts: list cuts = [...] (tensor names) in the spec")
    return analysis, [cut.name for cut in cuts]


def _spec_words(message: str) -> str:
    """A cut or load message in the spec's words: `input = "CxHxW"` where the command line says --input."""
    return message.replace("pass --input", "set input =").replace("--input", "input")


def file_name(cut: str) -> str:
    """A cut's name as a file name: itself when it is one (every PyTorch cut), else its slug and a short hash (a
    tensor such as "/layer1/Relu_output_0")."""
    safe = slug(cut)
    return safe if safe == cut else f"{safe}-{hashlib.sha256(cut.encode()).hexdigest()[:8]}"


class OnnxSteps(SweepSteps):
    """The steps of ONNX entries (`_onnx_tail`, and `_export` for them); every other entry goes to SweepSteps."""

    def __init__(self, spec: SweepSpec, out: Path, progress: Progress) -> None:
        super().__init__(spec, out, progress)
        self.graphs: dict = {}  # entry name -> its OnnxCutAnalysis (resolve_onnx), for ONNX entries
        self.references: dict = {}  # entry name -> the GraphReference its cuts share

    def shape_of(self, entry: SweepModel) -> tuple[int, int, int]:
        """The model's input (C, H, W): the spec's, or an ONNX file's own."""
        return entry.input_shape or tuple(self.graphs[entry.name].input_shape)

    def cut_points(self, entry: SweepModel, names: list[str]) -> list | None:
        """An ONNX entry's CutPoints of `names`; None for a PyTorch model (its costs come from its analysis)."""
        return None if entry.onnx is None else [self.graphs[entry.name].resolve(n) for n in names]

    def model_inputs(self, entry: SweepModel, checkpoint) -> dict:
        """What every step of a model reads: its ONNX file and the external data files beside it, or its
        checkpoint (none for random weights)."""
        if entry.onnx is None:
            return self.inputs(checkpoint=checkpoint)
        from onnx.external_data_helper import ExternalDataInfo

        from edgesplit.models.onnx_graph import external_tensors

        data = sorted({ExternalDataInfo(t).location for t in external_tensors(self.graphs[entry.name].model)})
        folder = entry.onnx_path.parent
        return self.inputs(onnx=entry.onnx_path, **{f"onnx data {name}": folder / name for name in data})

    def _onnx_tail(self, entry: SweepModel, cut: str | None) -> dict:
        from edgesplit.bench.tail_timing import time_onnx_tail

        analysis = self.graphs[entry.name]
        return time_onnx_tail(analysis, None if cut is None else analysis.resolve(cut), self.spec.profile,
                              self.progress)

    def _export(self, entry: SweepModel, checkpoint, cut: str, precision: str, weights: str, tag: str = "") -> dict:
        if entry.onnx is None:
            return super()._export(entry, checkpoint, cut, precision, weights, tag)
        from edgesplit.export import ExportConfig, export_bundle

        d = self.spec.data
        config = ExportConfig(str(entry.onnx_path), cut, precision=precision, input_shape=self.shape_of(entry),
                              calib_data=d.name, calib_root=d.root_path, calib_size=d.calib_size, seed=d.seed,
                              int8_scope=self.spec.int8_scope)
        path = self.out / "bundles" / entry.name / f"{file_name(cut)}{tag}-{precision}"
        bundle = export_bundle(config, path, force=True, progress=self.progress, source=self._file_head(entry, cut),
                               measurer=self.int8_measurer())
        return self.export_fields(bundle, weights, "shipped onnx file")

    def _file_head(self, entry: SweepModel, cut: str):
        """The GraphHead of `cut`, cut from the entry's file once and shared by the cut's precisions."""
        from edgesplit.export.graph_reference import GraphReference
        from edgesplit.export.sources import GraphHead

        analysis = self.graphs[entry.name]
        if entry.name not in self.references:
            self.references = {entry.name: GraphReference(analysis, [analysis.resolve(c).name
                                                                     for c in self.cuts[entry.name]])}
        key = ("onnx", str(entry.onnx_path), cut)
        if self._head is None or self._head[0] != key:
            self._head = None  # one cut at a time: the previous head's files are dropped
            self._head = (key, GraphHead.from_file(entry.onnx_path, cut, analysis=analysis,
                                                   reference=self.references[entry.name]))
        return self._head[1]
