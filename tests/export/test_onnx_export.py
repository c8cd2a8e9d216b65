"""ONNX export names the operator it cannot convert."""

import pytest
import torch

from edgesplit.errors import ExportError
from edgesplit.export.onnx_export import export_onnx


def test_unsupported_operator(tmp_path):
    class Median(torch.nn.Module):
        def forward(self, x):
            return x.median(dim=1).values

    with pytest.raises(ExportError, match="cannot convert operator aten.median"):
        export_onnx(Median(), torch.rand(1, 3, 8, 8), tmp_path / "m.onnx")
