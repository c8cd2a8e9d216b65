"""`edgesplit profile` and `edgesplit emit`: rows appended, never overwritten; the same over ssh (a real sshd
on 127.0.0.1, tests/devices/ssh.py), where the emitted bytes equal a local emit."""

import sys

import numpy as np

from edgesplit.runtime.featurefile import load_features
from edgesplit.runtime.results import read_rows
from tests.devices.ssh import loopback_sshd, remote_bundle  # noqa: F401 - the fixtures 'bundle', 'sshd'


def _cli_device_args(sshd):
    args = ["--device", sshd["url"], "--ssh-identity", sshd["identity"], "--remote-python", sys.executable]
    for option in sshd["options"]:
        args += ["--ssh-option", option]
    return args


def test_cli_profile_and_emit(bundles, tmp_path, capsys):
    from edgesplit.cli.main import main

    out = tmp_path / "results.jsonl"
    args = ["profile", str(bundles["c4"].path), "--batch", "1,2", "--warmup", "1", "--iters", "5", "--min-seconds",
            "0", "--out", str(out), "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "p99 ms" in text and "appended 2 row(s)" in text
    assert main(args) == 0
    assert len(read_rows(out)) == 4, "rows are appended, never overwritten"
    assert main(["emit", str(bundles["c4"].path), "--split", "test", "--limit", "8", "--out", str(tmp_path / "f.npz"),
                 "--quiet"]) == 0
    assert "8 samples of digits/test" in capsys.readouterr().out
    assert main(["profile", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_profile_over_ssh(sshd, bundle, tmp_path, capsys):
    from edgesplit.cli.main import main
    from edgesplit.runtime.results import read_rows

    out = tmp_path / "remote.jsonl"
    code = main(["profile", str(bundle.path), "--warmup", "1", "--iters", "5", "--min-seconds", "0",
                 "--out", str(out), *_cli_device_args(sshd)])
    assert code == 0, capsys.readouterr().err
    (row,) = read_rows(out)
    assert row["device_url"].startswith("ssh://") and row["kind"] == "measured"
    assert row["bundle_sha256"] == bundle.sha256 and row["latency_ms"]["p50"] > 0


def test_emit_over_ssh_matches_local_emit(sshd, bundle, tmp_path, capsys):
    from edgesplit.cli.main import main
    from edgesplit.runtime.emit import emit_split

    code = main(["emit", str(bundle.path), "--split", "attack", "--limit", "16", "--out", str(tmp_path / "r.npz"),
                 *_cli_device_args(sshd)])
    assert code == 0, capsys.readouterr().err
    remote = load_features(tmp_path / "r.npz")
    local = emit_split(bundle.path, "digits", "attack", limit=16)
    assert np.array_equal(remote.ids, local.ids)
    assert remote.features.tobytes() == local.features.tobytes()
    assert remote.meta["device_url"].startswith("ssh://")
