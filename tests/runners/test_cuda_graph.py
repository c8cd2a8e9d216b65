"""torch-cuda's CUDA-graph mode: which heads are captured and why not (CPU), and on a GPU the capture, a replay
equal to the eager call, the fallback with its reason, the one-line error, and rows recording the mode."""

import numpy as np
import pytest
import torch

from edgesplit.errors import BackendError
from edgesplit.models import create_model, split
from edgesplit.runners import get_runner
from edgesplit.runners.cuda_graph import EAGER, GRAPH, cudnn_version_text, graph_plan, random_ops
from edgesplit.runners.pytorch import TorchRunner
from tests.runtime.helpers import FAST


def _noise_head():
    from edgesplit.defenses.apply import apply_defense

    model = apply_defense(create_model("classifier4", in_chans=1, img_size=32, seed=0), "features.1", "noise",
                          {"std": 0.1}, in_chans=1, img_size=32)
    return split(model.eval(), "features.1.defense").head


def test_a_deterministic_head_is_planned_as_a_graph_and_a_stochastic_one_eagerly_with_its_reason():
    head = split(create_model("classifier4", in_chans=1, img_size=32, seed=0).eval(), "features.1").head
    assert random_ops(head) == [] and graph_plan(head, None) == (GRAPH, None) and graph_plan(head, True)[0] == GRAPH
    mode, reason = graph_plan(head, False)
    assert mode == EAGER and "--no-cuda-graph" in reason
    noisy = _noise_head()
    assert random_ops(noisy) == ["randn_like"]
    mode, reason = graph_plan(noisy, None)
    assert mode == EAGER and "randn_like" in reason and "eagerly" in reason
    with pytest.raises(BackendError, match="cannot be captured as a CUDA graph: the head draws random numbers"):
        graph_plan(noisy, True)
    assert graph_plan(head, None, stochastic=True)[0] == EAGER, "the manifest's stochastic flag counts too"


def test_cuda_graph_option_belongs_to_torch_cuda_only():
    with pytest.raises(BackendError, match="--cuda-graph applies to --backend torch-cuda only"):
        get_runner("ort", cuda_graph=True)
    with pytest.raises(BackendError, match="--no-cuda-graph applies to --backend torch-cuda only"):
        TorchRunner("torch", cuda_graph=False)
    assert get_runner("torch-cuda", cuda_graph=False).cuda_graph is False  # made anywhere; loading needs a GPU
    assert get_runner("ort").name == "ort"


def test_cudnn_version_text():
    assert cudnn_version_text(90100) == "9.1.0" and cudnn_version_text(8902) == "8.9.2"
    assert cudnn_version_text(None) is None


# --- on a CUDA GPU -------------------------------------------------------------------------------------------


class _HostSync(torch.nn.Module):
    """Reads a value back to the host mid-call: cannot be captured as a CUDA graph."""

    def forward(self, x):
        return x * float(x.sum().item())


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_a_captured_head_replays_what_the_eager_call_computes(dtype):
    from edgesplit.runners.cuda_graph import TOLERANCE, capture_graph

    head = split(create_model("resnet18", img_size=32, seed=0).eval(), "layer2.1").head.cuda().to(dtype)
    captured = capture_graph(head, torch.rand(4, 3, 32, 32, device="cuda", dtype=dtype))
    x = torch.rand(4, 3, 32, 32, device="cuda", dtype=dtype)  # a new batch, copied into the static input
    captured.static_input.copy_(x)
    out = captured.replay().clone()
    with torch.no_grad():
        expected = head(x)
    rtol, atol = TOLERANCE[str(dtype).removeprefix("torch.")]
    torch.testing.assert_close(out, expected, rtol=rtol, atol=atol)


@pytest.mark.gpu
def test_a_head_that_syncs_with_the_host_is_not_captured():
    from edgesplit.runners.cuda_graph import CaptureFailed, capture_graph

    with pytest.raises(CaptureFailed, match="capture failed"):
        capture_graph(_HostSync().cuda(), torch.rand(2, 3, device="cuda"))
    assert torch.ones(1, device="cuda").item() == 1.0, "the device still works"
    assert 0 <= torch.rand(4, device="cuda").min().item() < 1, "and draws random numbers after a failed capture"
    assert torch.cuda.current_stream() == torch.cuda.default_stream(), "and runs on its own stream, not the capture's"


def test_the_fp32_math_of_gpu_rows_follows_torchs_setting():
    """Recorded in every GPU row: an fp32 row on Ampere or later runs convolutions in TF32 unless told not to."""
    from edgesplit.runners.cuda_graph import fp32_math

    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    try:
        conv.fp32_precision = "ieee"
        assert fp32_math(torch)["conv"] == "ieee"
        conv.fp32_precision = "tf32"
        assert fp32_math(torch)["conv"] == "tf32"
    finally:
        conv.fp32_precision = before


@pytest.mark.gpu
def test_torch_cuda_rows_record_the_gpu_and_the_capture_mode(bundles):
    from edgesplit.runtime.profile import profile_bundle

    bundle = bundles["fp32"]
    graph_rows = profile_bundle(bundle.path, "torch-cuda", [1, 4], FAST)
    eager_row, = profile_bundle(bundle.path, "torch-cuda", [1], FAST, cuda_graph=False)
    for row in graph_rows:
        gpu = row["gpu"]
        assert gpu["capture"]["mode"] == "graph" and gpu["capture"]["requested"] == "auto"
        assert gpu["capture"]["captured_batches"] == [row["batch"]]
        assert gpu["name"] and gpu["torch"] == torch.__version__ and gpu["cuda"] == torch.version.cuda
        assert gpu["cudnn"] and {"driver", "clocks", "compute_capability"} <= set(gpu)
        assert gpu["uuid"], "torch names the device's UUID"
        if gpu["nvml"] is not None:  # NVML present: it read the GPU torch ran on, found by that UUID
            assert gpu["nvml"]["matched_by"] == "uuid", gpu["nvml"]
            assert row["memory"]["nvml_matched_by"] == "uuid"
        assert row["settings"]["samplers"]["rss"] in ("kernel-tracked", "between windows")
        assert row["memory"]["gpu_max_allocated_bytes"] > 0
    assert eager_row["gpu"]["capture"] == {"mode": "eager", "requested": "off",
                                           "reason": "eager calls asked for (--no-cuda-graph)"}
    x = np.random.default_rng(1).random((4, 3, 64, 64), dtype=np.float32)
    outs = {}
    for graph in (True, False):
        with get_runner("torch-cuda", cuda_graph=graph) as runner:
            runner.load(bundle)
            outs[graph] = runner.run(x)
            assert runner.info()["capture"]["mode"] == (GRAPH if graph else EAGER)
    np.testing.assert_allclose(outs[True], outs[False], rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_an_uncapturable_head_falls_back_by_default_and_is_one_error_when_graphs_are_asked_for(bundles):
    x = np.random.default_rng(1).random((2, 3, 64, 64), dtype=np.float32)
    for requested in (None, True):
        with get_runner("torch-cuda", cuda_graph=requested) as runner:
            runner.load(bundles["fp32"])
            runner.head = _HostSync().cuda()  # stands in for a head with a host sync inside
            if requested:
                with pytest.raises(BackendError, match="cannot be captured as a CUDA graph at batch 2: capture failed"):
                    runner.bind(runner.prepare(x))
                continue
            runner.bind(runner.prepare(x))()
            capture = runner.info()["capture"]
            assert capture["mode"] == EAGER and "capture failed" in capture["reason"], capture


def test_the_torch_device_uuid_and_ordinal_that_nvml_matches():
    from types import SimpleNamespace

    from edgesplit.runners.cuda_graph import torch_gpu_uuid

    class _Uuid:
        def __str__(self):
            return "9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff"

    def torch_with(props):
        return SimpleNamespace(cuda=SimpleNamespace(get_device_properties=props))

    assert torch_gpu_uuid(torch_with(lambda i: SimpleNamespace(uuid=_Uuid())), 1) == str(_Uuid())
    assert torch_gpu_uuid(torch_with(lambda i: SimpleNamespace()), 0) is None, "an older torch: no UUID"
    assert torch_gpu_uuid(torch_with(lambda i: 1 / 0), 0) is None
    assert TorchRunner("torch").cuda_device() is None, "CPU runners name no GPU"
    if not torch.cuda.is_available():
        assert TorchRunner("torch-cuda").cuda_device() is None
        assert get_runner("ort").cuda_device() is None
