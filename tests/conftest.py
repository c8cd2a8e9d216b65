"""Shared test set-up: `gpu`-marked tests skip themselves where CUDA is absent; the fixtures more than one
folder uses.

Expensive fixtures shared across folders (a whole small sweep, the runtime's bundles, the audit's trained
checkpoint and its INT8 bundle) are session-scoped: each is built once for the run, not once per module.
Fixtures whose name means different things in different modules (`bundle`, `pristine`, `sshd`) are not here:
the modules import them by name from tests/export/helpers.py and tests/devices/ssh.py.
"""

import json
import sys
import uuid
import warnings

import pytest

from tests import trt_double

# test modules (and test bodies) import the TensorRT double by its plain name, as when tests/ was one folder
sys.modules.setdefault("trt_double", trt_double)


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch)")
    for item in gpu_items:
        item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    """Name the CPU the suite ran on, with its INT8-relevant flags, at the end of every run: the few tests that
    time heads (INT8 scope, timing windows) read what this CPU does, and a failure is read against it."""
    from edgesplit.export.int8_targets import host_cpu

    host = host_cpu()
    terminalreporter.write_line(f"edgesplit host: {host['cpu']}; INT8 flags {' '.join(host['flags']) or 'none'}; "
                                f"INT8 target {host['target']}")


# --- models ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c4_gray(tmp_path_factory):
    """A classifier4 checkpoint for 1x32x32 inputs (the demo's shape), untrained: only its shape matters."""
    from edgesplit.models import create_model, save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "c4.pt"
    return save_checkpoint(create_model("classifier4", in_chans=1, img_size=32, seed=0), path)


# --- export and runtime ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    """resnet18 at layer2.1 (3x64x64) as fp32 and int8 bundles, and an int8 classifier4 head (1x32x32)."""
    from edgesplit.export import ExportConfig, export_bundle

    root = tmp_path_factory.mktemp("rt")
    out = {}
    for precision in ("fp32", "int8"):
        out[precision] = export_bundle(ExportConfig("resnet18", "layer2.1", precision=precision,
                                                    input_shape=(3, 64, 64), calib_size=32, eval_size=16),
                                       root / f"r18-{precision}")
    out["c4"] = export_bundle(ExportConfig("classifier4", "features.1", precision="int8", input_shape=(1, 32, 32),
                                           calib_size=32, eval_size=16), root / "c4-int8")
    return out


@pytest.fixture(scope="module")
def plain_onnx(tmp_path_factory):
    """Exported the way a user outside edgesplit would: legacy exporter, fixed batch of 1, default names."""
    import torch
    from torch import nn

    class ForeignHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, 1, 1))

        def forward(self, x):
            return self.net(x)

    path = tmp_path_factory.mktemp("foreign") / "head.onnx"
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ForeignHead().eval(), (torch.zeros(1, 1, 32, 32),), str(path), dynamo=False)
    return path


# --- attacks -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """classifier4 trained two epochs on the digits (1x32x32): a target whose features an attacker can invert."""
    from edgesplit.data import load_dataset
    from edgesplit.models import create_model, save_checkpoint, train_classifier
    from edgesplit.models.training import TrainConfig

    model = create_model("classifier4", in_chans=1, img_size=32)
    train_classifier(model, load_dataset("digits", split="train"), None, TrainConfig(epochs=2))
    return str(save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "c4.pt"))


@pytest.fixture(scope="session")
def int8_bundle(tmp_path_factory, checkpoint):
    from edgesplit.export import ExportConfig, export_bundle

    return export_bundle(ExportConfig("classifier4", "features.0", precision="int8", checkpoint=checkpoint,
                                      calib_size=32, eval_size=16), tmp_path_factory.mktemp("audit") / "bundle")


# --- bench -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sweep(tmp_path_factory):
    """The TINY sweep (tests/bench/helpers.py), run for real: (spec, out folder, results file)."""
    from edgesplit.bench import run_sweep, spec_from_dict
    from tests.bench.helpers import TINY

    out = tmp_path_factory.mktemp("sweep")
    spec = spec_from_dict(TINY)
    return spec, out, run_sweep(spec, out)


@pytest.fixture
def fake_steps(monkeypatch):
    """Steps that write a fresh file each time they run (as a real re-export or re-emit does)."""
    from edgesplit.bench import sweep as sweep_module
    from tests.bench.helpers import _sha, _write

    calls = []

    def tail(self, model, cut, entry):
        return {"tail_ms": 1.0}

    def export(self, entry, checkpoint, cut, precision, weights, tag=""):
        calls.append(("export", precision))
        manifest = _write(self.out / "bundles" / entry.name / f"{cut}{tag}-{precision}" / "manifest.json",
                          json.dumps({"made": uuid.uuid4().hex}))
        return {"bundle": self.rel(manifest.parent), "bundle_sha256": _sha(manifest)}

    def profile(self, bundle_dir, backend, device, precision, checkpoint):
        calls.append(("profile", precision))
        return {"latency_ms": 1.0}

    def emit(self, bundle_dir, entry, cut, precision):
        calls.append(("emit", precision))
        folder = self.out / "features" / entry.name
        return {f"{split}_features": self.rel(_write(folder / f"{cut}-{precision}-{split}.npz", uuid.uuid4().hex))
                for split in ("attack", "test")}

    def audit(self, bundle_dir, emitted, decoder, fp32_attack, previous_attack, entry, cut, precision):
        calls.append(("audit", precision))
        path = _write(self.out / "audits" / entry.name / f"{cut}-{precision}-{decoder}" / "audit.json", "{}")
        return {"audit": self.rel(path), "psnr": 10.0}

    for name, fn in (("_tail", tail), ("_export", export), ("_profile", profile), ("_emit", emit),
                     ("_audit", audit)):
        monkeypatch.setattr(sweep_module._Sweep, name, fn)
    return calls
