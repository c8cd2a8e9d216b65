"""The torch runner reproduces the ONNX head and runs only fp32 and fp16 heads."""

import numpy as np
import pytest

from edgesplit.errors import BackendError
from edgesplit.runners import get_runner
from edgesplit.runtime.profile import profile_bundle
from tests.runtime.helpers import FAST


def test_torch_backend_reproduces_the_onnx_head(bundles):
    with get_runner("torch") as torch_backend, get_runner("ort") as ort_backend:
        torch_backend.load(bundles["fp32"])
        ort_backend.load(bundles["fp32"])
        x = np.random.default_rng(3).random((2, 3, 64, 64), dtype=np.float32)
        assert np.allclose(torch_backend.run(x), ort_backend.run(x), atol=1e-4)
    (row,) = profile_bundle(bundles["fp32"].path, "torch", [1], FAST)
    assert row["backend_info"]["runtime"] == "torch"
    with pytest.raises(BackendError, match="runs fp32 and fp16 heads"):
        profile_bundle(bundles["int8"].path, "torch", [1], FAST)
