"""The device runner: it runs with torch blocked and answers every request, errors included, in JSON."""

import json
import subprocess
import sys

import numpy as np

from edgesplit.runtime import device_runner, load_features, pack_bundle

BLOCK_TORCH = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == 'torch' or name.startswith('torch.') or name == 'torchvision':
            raise ImportError('torch is blocked in this test: the device path must not need it')
sys.meta_path.insert(0, Block())
from edgesplit.runtime import device_runner
code = device_runner.main(sys.argv[1:])
assert 'torch' not in sys.modules
sys.exit(code)
"""


def test_device_runner_runs_with_torch_blocked(bundles, tmp_path):
    from edgesplit.runtime.emit import save_inputs, split_inputs

    archive = pack_bundle(bundles["c4"].path, tmp_path / "c4.tar.gz")
    images, ids, data = split_inputs(bundles["c4"], "digits", "attack", 12, None, 0)
    inputs = save_inputs(tmp_path / "inputs.npz", images, ids, data)
    feed = tmp_path / "feed.npz"
    np.savez(feed, input=np.zeros((1, 1, 32, 32), np.float32))
    head = str(bundles["c4"].onnx_path)
    requests = [
        {"action": "profile", "bundle": str(archive), "batches": [1], "timing": {"warmup": 1, "iters": 5,
                                                                                  "min_seconds": 0}},
        {"action": "emit", "bundle": str(bundles["c4"].path), "inputs": str(inputs), "out": str(tmp_path / "f.npz")},
        {"action": "info"},
        {"action": "int8_host"},  # the measurements of export --int8-scope auto --device ssh://...
        {"action": "profile_nodes", "graph": head, "feed": str(feed)},
        {"action": "time_heads", "heads": [head, head], "feed": str(feed)},
    ]
    replies = []
    for request in requests:
        proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH], input=json.dumps(request), text=True,
                              capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        reply = json.loads(proc.stdout.strip().splitlines()[-1])
        assert reply["ok"]
        replies.append(reply)
    host, profile, timing = replies[-3:]
    assert host["host"]["target"] and host["host"]["onnxruntime"] and host["host"]["hostname"]
    assert profile["profile"]["runs"] == 30 and any(op == "Conv" for _, op, _, _ in profile["profile"]["kernels"])
    assert len(timing["times_ms"]) == 2 and all(len(t) >= 100 and min(t) > 0 for t in timing["times_ms"])
    ff = load_features(tmp_path / "f.npz")
    assert np.array_equal(ff.ids, ids) and len(ff.features) == 12


def test_device_runner_reports_errors_as_json(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgesplit.runtime.device_runner"], capture_output=True, text=True,
                          input=json.dumps({"action": "profile", "bundle": str(tmp_path / "missing")}), timeout=120)
    assert proc.returncode == 2
    reply = json.loads(proc.stdout)
    assert reply["ok"] is False and "does not exist" in reply["error"]


def test_device_runner_turns_os_errors_into_a_json_reply(bundles, tmp_path, capsys):
    request = {"action": "emit", "bundle": str(bundles["c4"].path), "inputs": str(tmp_path / "no-inputs.npz"),
               "out": str(tmp_path / "f.npz")}
    (tmp_path / "r.json").write_text(json.dumps(request))
    assert device_runner.main(["--request", str(tmp_path / "r.json")]) == 2
    reply = json.loads(capsys.readouterr().out)
    assert reply["ok"] is False and "no-inputs.npz" in reply["error"]
