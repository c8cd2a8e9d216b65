"""`edgesplit emit` and `edgesplit profile` with bad input (issue 13): nothing overwritten, an unwritable --out
found before any work, batch sizes below one or beyond memory refused in one line."""

import pytest

from edgesplit.cli.main import main
from edgesplit.runtime.featurefile import load_features
from tests.cli.commands import one_line_error
from tests.export.helpers import fp32_bundle, fp32_pristine  # noqa: F401 - the fixtures 'bundle', 'pristine'


def test_emit_refuses_an_existing_out_file_unless_force(bundle, tmp_path, capsys):
    precious = bundle / "head.onnx"
    before = precious.read_bytes()
    line = one_line_error(capsys, "emit", str(bundle), "--limit", "8", "--out", str(precious), "--quiet")
    assert "must end in .npz" in line and precious.read_bytes() == before
    existing = tmp_path / "f.npz"
    existing.write_bytes(b"keep me")
    line = one_line_error(capsys, "emit", str(bundle), "--limit", "8", "--out", str(existing), "--quiet")
    assert "already exists: pass --force" in line and existing.read_bytes() == b"keep me"
    assert main(["emit", str(bundle), "--limit", "8", "--out", str(existing), "--force", "--quiet"]) == 0
    assert len(load_features(existing).ids) == 8


def test_emit_into_an_unwritable_place_is_refused_before_emitting(bundle, tmp_path, capsys, monkeypatch):
    """Item 13: the folder is checked before the features are computed, not when they are saved."""
    import edgesplit.runtime.emit as emit_module

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    computed = []
    monkeypatch.setattr(emit_module, "emit_arrays", lambda *a, **k: computed.append(1))
    line = one_line_error(capsys, "emit", str(bundle), "--limit", "8", "--out", str(blocker / "f.npz"), "--quiet")
    assert line.startswith("edgesplit emit: error: cannot write in") and "choose a writable --out" in line
    assert not computed, "nothing was emitted first"


@pytest.mark.parametrize("size", ["0", "-1", "many"])
def test_emit_batch_size_below_one_is_a_usage_error(bundle, tmp_path, capsys, size):
    line = one_line_error(capsys, "emit", str(bundle), "--batch-size", size, "--out", str(tmp_path / "f.npz"))
    assert "--batch-size" in line and "positive integer" in line
    assert not (tmp_path / "f.npz").exists()


def test_profile_batch_beyond_memory_is_refused_before_allocating(bundle, capsys, monkeypatch):
    from edgesplit.runtime import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 64 << 20)  # a board with 64 MiB free
    line = one_line_error(capsys, "profile", str(bundle), "--batch", "100000", "--quiet")
    # one sample: 1x32x32 float32 input (4 KiB) + 128x8x8 float32 output (32 KiB)
    assert "batch 100000 needs 3.43 GiB for its input and output alone" in line
    assert "use a batch of at most 1820" in line


def test_profile_cuda_graph_options_need_torch_cuda_and_a_gpu(bundle, capsys):
    """Issue 16: --cuda-graph / --no-cuda-graph belong to torch-cuda; without a GPU torch-cuda is one line."""
    import torch

    line = one_line_error(capsys, "profile", str(bundle), "--cuda-graph", "--quiet")
    assert "--cuda-graph applies to --backend torch-cuda only" in line
    line = one_line_error(capsys, "profile", str(bundle), "--backend", "torch", "--no-cuda-graph", "--quiet")
    assert "--no-cuda-graph applies to --backend torch-cuda only" in line
    if not torch.cuda.is_available():
        line = one_line_error(capsys, "profile", str(bundle), "--backend", "torch-cuda", "--cuda-graph", "--quiet")
        assert "torch sees no CUDA GPU" in line
