"""The onnxruntime runner: missing providers and unknown backends are named, bad input and NaN output refused."""

import numpy as np
import pytest

from edgesplit.errors import BackendError
from edgesplit.runners import check_output, get_runner
from edgesplit.runtime.profile import profile_bundle
from tests.runtime.helpers import FAST


def test_missing_backends_name_what_to_install(bundles):
    with pytest.raises(BackendError, match="no CUDAExecutionProvider.*onnxruntime-gpu"):
        profile_bundle(bundles["c4"].path, "ort-cuda", [1], FAST)
    with pytest.raises(BackendError, match="unknown backend 'onnx' .*ort-cuda"):
        get_runner("onnx")


def test_wrong_input_shape_and_nan_outputs(bundles):
    with get_runner("ort") as backend:
        backend.load(bundles["c4"])
        with pytest.raises(BackendError, match=r"input batch has shape \(2, 3, 32, 32\)"):
            backend.run(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(BackendError, match="2 NaN/Inf values"):
        check_output(np.array([1.0, np.nan, np.inf], np.float32))


def test_sessions_keep_onnxruntimes_spinning_workers_as_deployed(bundles):
    from edgesplit.runners.onnxrt import ort_session

    path = next(iter(bundles.values())).onnx_path
    key = "session.intra_op.allow_spinning"
    with pytest.raises(RuntimeError, match="does not have configuration"):  # onnxruntime's default: spinning
        ort_session(path, threads=2).get_session_options().get_session_config_entry(key)
