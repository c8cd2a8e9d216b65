"""`CutPoint`: one legal cut of a model, whatever the model is (a PyTorch module or an ONNX graph).

A torch-free leaf: the ONNX cut analysis (`models.onnx_cuts`) and the PyTorch one (`models.cuts`) both
return these, and code that only reads cut lists (reports, manifests) needs neither torch nor onnx.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

GRANULARITIES = ("block", "layer")


@dataclass(frozen=True)
class CutPoint:
    """One legal cut: what crosses (shape per sample) and what the head costs."""

    name: str
    index: int  # position of the cut in the graph's execution order
    node: str  # graph node whose output crosses (fx node, or ONNX node)
    shape: tuple[int, ...]  # per-sample shape of the crossing tensor
    params: int  # parameters in the head
    macs: int  # multiply-accumulates of the head, per sample
    payload_bytes: dict[str, int]  # bytes per sample on the wire at fp32 / fp16 / int8
    is_block: bool

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["numel"] = self.numel
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CutPoint:
        fields = {k: d[k] for k in ("name", "index", "node", "params", "macs", "is_block")}
        return cls(shape=tuple(d["shape"]), payload_bytes=dict(d["payload_bytes"]), **fields)
