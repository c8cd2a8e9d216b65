"""Head sources (export/sources.py): where export takes a head from, and what it reuses across precisions."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgesplit.errors import ExportError
from edgesplit.export import ExportConfig, export_bundle
from edgesplit.export.onnx_export import export_whole_model
from edgesplit.export.pipeline import torch_model_record
from edgesplit.export.sources import GraphHead
from edgesplit.models import analyse, create_model, split

SHAPE = (1, 32, 32)


@pytest.fixture(scope="module")
def model():
    return create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0).eval()


@pytest.fixture(scope="module")
def whole(model, tmp_path_factory):
    cuts = analyse(model, torch.zeros(1, *SHAPE)).blocks
    return export_whole_model(model, cuts, tmp_path_factory.mktemp("whole") / "c4.onnx")


def test_the_whole_graph_names_every_block_cut_and_its_heads_are_the_pytorch_heads(model, whole):
    x = np.random.default_rng(0).random((5, *SHAPE), dtype=np.float32)
    cuts = analyse(model, torch.zeros(1, *SHAPE)).blocks
    named = [c for c in cuts if c.name in whole]
    assert len(named) == len(cuts) == 5  # classifier4's five blocks; none is the model's output itself
    for cut in named:
        head = GraphHead.from_torch(whole, cut.name, {"name": "classifier4"}, model.edgesplit_spec)
        assert head.cut == cut  # the PyTorch cut's name and costs, as the per-cut path records them
        with torch.no_grad():
            want = split(model, cut.name).head(torch.from_numpy(x)).numpy()
            logits = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(head.reference(x), want, atol=1e-5)
        np.testing.assert_allclose(head.reference_logits(x), logits, atol=1e-5)


def test_the_reference_is_computed_once_per_image_set(model, whole):
    head = GraphHead.from_torch(whole, "features.1", {"name": "classifier4"}, model.edgesplit_spec)
    before = whole.reference.runs
    x = np.random.default_rng(1).random((4, *SHAPE), dtype=np.float32)
    for _ in range(3):  # three precisions of one cut
        head.reference(x)
        head.reference_logits(x)
    assert whole.reference.runs - before == 1  # one pass up to the cuts and the logits
    other = GraphHead.from_torch(whole, "features.3", {"name": "classifier4"}, model.edgesplit_spec)
    other.reference(x), other.reference_logits(x)  # a later cut of the same graph: the same pass served it
    assert whole.reference.runs - before == 1
    head.reference(x + 0.5)  # another image set: computed anew
    assert whole.reference.runs - before == 2


def test_a_head_without_a_shared_reference_computes_its_own_once(model, whole, monkeypatch):
    head = GraphHead(whole.analysis, whole.tensor_of("features.1"), {"name": "classifier4"}, {})
    calls = []
    run = head._run
    monkeypatch.setattr(head, "_run", lambda *a: calls.append(a[1]) or run(*a))
    x = np.random.default_rng(1).random((4, *SHAPE), dtype=np.float32)
    for _ in range(3):
        head.reference(x)
        head.reference_logits(x)
    assert len(calls) == 2  # the head once, the tail once
    head.reference(x + 0.5)
    assert len(calls) == 4


def test_an_fp32_head_cut_from_a_graph_is_the_reference_graph(model, whole, tmp_path):
    config = ExportConfig("classifier4", "features.2", "fp32", input_shape=SHAPE, eval_size=32)
    record = torch_model_record(config, model.edgesplit_spec)
    source = GraphHead.from_torch(whole, "features.2", record, model.edgesplit_spec)
    bundle = export_bundle(config, tmp_path / "b", source=source)
    assert onnx.load(str(bundle.onnx_path)).graph == onnx.load(str(source.reference_graph())).graph
    assert bundle.manifest["fidelity"]["max_abs_error"] == 0.0
    assert bundle.manifest["model"]["graph"]["sha256"] == whole.sha256
    assert bundle.manifest["cut"]["name"] == "features.2" and bundle.manifest["model"]["spec"]["name"] == "classifier4"
    int8 = export_bundle(ExportConfig("classifier4", "features.2", "int8", input_shape=SHAPE, eval_size=32,
                                      calib_size=32), tmp_path / "i", source=source)
    assert int8.manifest["fidelity"]["max_abs_error"] > 0 and int8.manifest["fidelity"]["mean_cosine"] > 0.99


def test_a_shipped_file_with_a_fixed_batch_is_refused(model, tmp_path):
    path = tmp_path / "fixed.onnx"
    torch.onnx.export(model, (torch.zeros(1, *SHAPE),), str(path), dynamo=True, external_data=False)
    with pytest.raises(ExportError, match="batches of exactly 1 .*dynamic batch axis"):
        GraphHead.from_file(path, "relu_1")


def test_the_manifest_hashes_the_shipped_file_and_its_external_data(model, tmp_path):
    from edgesplit.digest import sha256_file

    path = tmp_path / "c4.onnx"
    torch.onnx.export(model, (torch.zeros(1, *SHAPE),), str(path), dynamo=True,
                      dynamic_shapes=({0: torch.export.Dim("batch")},))
    data = [p.name for p in tmp_path.glob("c4.onnx.*")]
    head = GraphHead.from_file(path, "relu_1")
    record = head.model_record()
    assert record["spec"] is None and record["graph"]["file"] == "c4.onnx"
    assert record["graph"]["sha256"] == sha256_file(path)
    assert record["graph"]["external_data"] == {name: sha256_file(tmp_path / name) for name in data} and data
    assert str(tmp_path) not in str(record)  # no machine path in a manifest
