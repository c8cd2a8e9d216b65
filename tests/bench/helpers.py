"""Sweep specs (a real TINY one, and SPEC for the fake steps of tests/conftest.py's `fake_steps`), the
files a fake step writes, and the rows a planner test plans on."""

import hashlib
import json

TINY = {
    "sweep": {"models": [{"name": "classifier4", "input": "1x32x32", "cuts": ["features.1", "features.3"]}],
              "precisions": ["int8", "fp32"], "backends": ["ort", "tensorrt", "torch"], "decoders": ["deconv"],
              "estimate": ["raspberry-pi-5-8gb"]},
    "profile": {"warmup": 1, "iters": 5, "min_seconds": 0},
    "attack": {"epochs": 1, "attack_limit": 64, "eval_limit": 16},
    "data": {"calib_size": 32},
}

SPEC = {"sweep": {"models": [{"name": "classifier4", "input": "1x32x32", "cuts": ["features.1"]}],
                  "precisions": ["fp32", "int8"], "backends": ["ort"], "decoders": ["deconv"]}}
SPEC_TOML = """\
[sweep]
precisions = ["fp32", "int8"]
backends = ["ort"]
decoders = ["deconv"]

[[sweep.models]]
name = "classifier4"
input = "1x32x32"
cuts = ["features.1"]
"""


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _raw_rows(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _rows():
    """A device 10x slower than the server; a 40 kB input; deeper cuts send less and leak less."""
    base = {"schema": "edgesplit.sweep-row", "spec_sha256": "s", "model": "m", "status": "ok"}
    rows = [{**base, "step": "tail", "cut": "input", "tail_ms": 2.0, "payload_bytes": 40000}]
    for i, (cut, payload, psnr) in enumerate([("a", 100000, 25.0), ("b", 20000, 19.0), ("c", 500, 14.0)]):
        rows.append({**base, "step": "tail", "cut": cut, "tail_ms": 2.0 * (1 - (i + 1) / 3)})
        rows.append({**base, "step": "profile", "cut": cut, "precision": "int8", "backend": "ort",
                     "device": "local", "latency_ms": 20.0 * (i + 1) / 3, "payload_bytes": payload})
        rows.append({**base, "step": "audit", "cut": cut, "precision": "int8", "decoder": "x", "psnr": psnr,
                     "ssim": psnr / 40})
    return rows
