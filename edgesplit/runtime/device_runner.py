"""The on-device runner: `python -m edgesplit.runtime.device_runner < request.json`.

Needs only numpy and onnxruntime (or tensorrt): it never imports torch unless the torch backend is asked
for. The request is JSON on stdin (no shell parsing of any argument, so it is safe over ssh); the reply is
one JSON object on stdout; exit code 2 with {"ok": false, "error": ...} on a handled error.

    {"action": "profile", "bundle": "b.tar.gz" | "bundle/", "backend": "ort", "batches": [1, 8],
     "timing": {"warmup": 20, "iters": 200, "min_seconds": 2}, "threads": null, "cuda_graph": null}
    {"action": "emit", "bundle": ..., "inputs": "inputs.npz", "out": "features.npz", "backend": "ort"}
    {"action": "info"}
    {"action": "int8_host", "threads": null}
    {"action": "profile_nodes", "graph": "g.onnx", "feed": "feed.npz", "threads": null}
    {"action": "time_heads", "heads": ["a.onnx", "b.onnx"], "feed": "feed.npz", "threads": null}

The last three measure for `export --int8-scope auto --device ssh://...` (`runtime.remote_measure`): the
machine's record (CPU, INT8 flags and target, onnxruntime), one graph's per-kernel medians (onnxruntime's
node profiler), and one timing pass of the candidate heads (each alone in turn, round by round) (their call times in ms), with the
same code `int8_measure.LocalMeasurer` runs on the exporting host. The feed is an .npz of the graph inputs.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgesplit.errors import EdgesplitError

ACTIONS = ("profile", "emit", "info", "int8_host", "profile_nodes", "time_heads")
MEASURING = ("int8_host", "profile_nodes", "time_heads")


def _bundle_dir(path: str, scratch: Path) -> Path:
    p = Path(path)
    if p.is_file():
        from edgesplit.runtime.pack import unpack_bundle

        return unpack_bundle(p, scratch / "bundle")
    return p


def handle(request: dict) -> dict:
    action = request.get("action")
    if action not in ACTIONS:
        raise EdgesplitError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    if action == "info":
        from edgesplit.devices.detect import detect_host
        from edgesplit.runtime.environment import environment

        return {"device": detect_host().to_dict(), "environment": environment()}
    if action in MEASURING:
        return _measure(action, request)
    with tempfile.TemporaryDirectory(prefix="edgesplit-run-") as scratch:
        bundle_dir = _bundle_dir(request["bundle"], Path(scratch))
        if action == "profile":
            from edgesplit.runtime.profile import profile_bundle
            from edgesplit.runtime.timing import TimingConfig

            rows = profile_bundle(bundle_dir, request.get("backend", "ort"), request.get("batches", [1]),
                                  TimingConfig(**request.get("timing", {})), request.get("threads"),
                                  cuda_graph=request.get("cuda_graph"))
            return {"rows": rows}
        from edgesplit.export.bundle import load_bundle
        from edgesplit.runtime.emit import emit_arrays, load_inputs

        images, ids, data = load_inputs(request["inputs"])
        ff = emit_arrays(load_bundle(bundle_dir), images, ids, data, request.get("backend", "ort"),
                         int(request.get("batch", 64)), request.get("threads"))
        out = ff.save(request["out"])
        return {"out": str(out), "count": len(ff.ids)}


def _measure(action: str, request: dict) -> dict:
    """The INT8 scope's measurements on this device (see the module's docstring)."""
    import platform

    from edgesplit.export import int8_measure
    from edgesplit.export.node_profile import profile_kernels

    threads = request.get("threads")
    if action == "int8_host":
        return {"host": {**int8_measure.this_host(threads), "hostname": platform.node()}}
    with np.load(request["feed"], allow_pickle=False) as data:
        feed = {name: data[name] for name in data.files}
    if action == "profile_nodes":
        return {"profile": profile_kernels(request["graph"], feed, threads=threads).to_dict()}
    return {"times_ms": int8_measure.time_pass(list(request["heads"]), feed, threads)}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        text = Path(argv[1]).read_text() if argv[:1] == ["--request"] else sys.stdin.read()
        request = json.loads(text)
        reply = {"ok": True, **handle(request)}
        code = 0
    except EdgesplitError as exc:
        reply, code = {"ok": False, "error": str(exc)}, 2
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        reply, code = {"ok": False, "error": f"malformed request ({type(exc).__name__}: {exc})"}, 2
    except (OSError, ValueError) as exc:  # a missing or unreadable file on the device, a bad array
        reply, code = {"ok": False, "error": f"on the device: {exc}"}, 2
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
