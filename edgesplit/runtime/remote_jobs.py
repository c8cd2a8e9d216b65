"""Profile and emit on a remote board: pack the bundle, copy it over, run the on-device runner, copy back."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgesplit.devices.remote import SshDevice
from edgesplit.export.bundle import load_bundle
from edgesplit.runtime.emit import save_inputs
from edgesplit.runtime.featurefile import FeatureFile, load_features
from edgesplit.runtime.pack import pack_bundle
from edgesplit.runtime.timing import TimingConfig


def profile_remote(device: SshDevice, bundle_path, backend: str = "ort", batches=(1,),
                   timing: TimingConfig | None = None, threads: int | None = None,
                   cuda_graph: bool | None = None) -> list[dict]:
    bundle = load_bundle(bundle_path)
    timing = timing or TimingConfig()
    with tempfile.TemporaryDirectory(prefix="edgesplit-remote-") as tmp:
        archive = pack_bundle(bundle, Path(tmp) / f"{bundle.path.name}.tar.gz")
        workdir = device.mkdtemp()
        try:
            remote_archive = device.put(archive, workdir)
            request = {"action": "profile", "bundle": remote_archive, "backend": backend,
                       "batches": list(batches), "timing": _timing_request(timing), "threads": threads}
            if cuda_graph is not None:  # only when given: an older device runner knows no such key
                request["cuda_graph"] = cuda_graph
            reply = device.run_runner(request)
        finally:
            device.remove(workdir)
    rows = reply["rows"]
    for row in rows:
        row["device_url"] = str(device.target)
    return rows


def emit_remote(device: SshDevice, bundle_path, images: np.ndarray, ids: np.ndarray, data: dict, out,
                backend: str = "ort", batch: int = 64, threads: int | None = None) -> FeatureFile:
    bundle = load_bundle(bundle_path)
    with tempfile.TemporaryDirectory(prefix="edgesplit-remote-") as tmp:
        archive = pack_bundle(bundle, Path(tmp) / f"{bundle.path.name}.tar.gz")
        inputs = save_inputs(Path(tmp) / "inputs.npz", images, ids, data)
        workdir = device.mkdtemp()
        try:
            remote_archive, remote_inputs = device.put(archive, workdir), device.put(inputs, workdir)
            remote_out = f"{workdir}/features.npz"
            device.run_runner({"action": "emit", "bundle": remote_archive, "inputs": remote_inputs,
                               "out": remote_out, "backend": backend, "batch": batch, "threads": threads})
            local = device.get(remote_out, Path(tmp) / "features.npz")
            features = load_features(local)
        finally:
            device.remove(workdir)
    if features.meta["bundle_sha256"] != bundle.sha256:
        from edgesplit.errors import DeviceError

        raise DeviceError("the remote runner emitted features for a different bundle than the one sent")
    features.meta["device_url"] = str(device.target)
    features.save(out)
    return features


def _timing_request(timing: TimingConfig) -> dict:
    """The timing settings sent to a device: window_seconds only when not the default (older runners lack it)."""
    sent = timing.to_dict()
    if sent["window_seconds"] == TimingConfig().window_seconds:
        del sent["window_seconds"]
    return sent
