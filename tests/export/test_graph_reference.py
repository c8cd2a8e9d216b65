"""The FP32 reference shared by the cuts of one graph (export/graph_reference.py): the features a cut's own head
gives, the model's logits, and fewer passes over the held-out images than cuts."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgesplit.errors import CutError
from edgesplit.export.graph_reference import GraphReference
from edgesplit.export.onnx_export import export_whole_model
from edgesplit.models import analyse, create_model
from edgesplit.models.onnx_split import extract_onnx, split_onnx

SHAPE = (1, 32, 32)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0).eval()
    cuts = analyse(model, torch.zeros(1, *SHAPE)).blocks
    return export_whole_model(model, cuts, tmp_path_factory.mktemp("whole") / "c4.onnx")


def _run(proto, x):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def _images(seed: int, n: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SHAPE), dtype=np.float32)


def test_features_are_each_cuts_own_head_and_logits_the_model(whole):
    tensors = [whole.tensor_of(c) for c in ("features.0", "features.2", "fc.1")]
    reference = GraphReference(whole.analysis, tensors)
    x = _images(0)
    (logits,) = _run(onnx.load(str(whole.path)), x)
    for tensor in tensors:
        head, _ = split_onnx(whole.analysis, tensor)
        (want,) = _run(head, x)
        # the same nodes and weights on the same runtime: the same numbers (not merely close)
        np.testing.assert_array_equal(reference.features(tensor, x), want)
    np.testing.assert_array_equal(reference.logits(x), logits)
    assert reference.runs == 1  # three cuts and the logits from one pass


def test_a_small_budget_splits_the_cuts_into_groups_of_consecutive_cuts(whole):
    tensors = [whole.tensor_of(c) for c in ("features.0", "features.1", "features.2", "features.3")]
    x = _images(1)
    sizes = [4 * len(x) * whole.analysis.resolve(t).numel for t in tensors]
    reference = GraphReference(whole.analysis, tensors, budget=sizes[0] + sizes[1])
    full = GraphReference(whole.analysis, tensors)
    for tensor in tensors:
        np.testing.assert_array_equal(reference.features(tensor, x), full.features(tensor, x))
    assert full.runs == 1
    assert reference.runs == 2  # features.0 and .1 fit the budget together, then .2 and .3 (smaller maps)
    reference.features(tensors[0], x)  # an earlier group again (a resumed sweep): recomputed, still right
    assert reference.runs == 3


def test_a_new_image_set_is_computed_anew(whole):
    tensor = whole.tensor_of("features.1")
    reference = GraphReference(whole.analysis, [tensor])
    a, b = _images(2), _images(3)
    first = reference.features(tensor, a).copy()
    assert not np.array_equal(reference.features(tensor, b), first)
    np.testing.assert_array_equal(reference.features(tensor, a), first)
    assert reference.runs == 3


def test_extract_onnx_refuses_a_name_that_is_not_a_legal_cut(whole):
    with pytest.raises(CutError, match="'no_such_tensor' is not a tensor of"):
        extract_onnx(whole.analysis, [whole.tensor_of("features.1"), "no_such_tensor"])
