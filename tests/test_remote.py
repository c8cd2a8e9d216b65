"""Remote devices: profile and emit over a real sshd on 127.0.0.1 (throwaway keys), and the failure messages.

The sshd is started by the test; `.ci/run` installs openssh-server if missing. The test skips, saying why,
only where sshd cannot be started.
"""

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgesplit.errors import DeviceError
from edgesplit.export import ExportConfig, export_bundle
from edgesplit.runtime.featurefile import load_features

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if SSHD is None or shutil.which("ssh-keygen") is None:
        pytest.skip("sshd is not installed (apt-get install openssh-server); .ci/run installs it")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    config = d / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
        f"PidFile {d / 'sshd.pid'}", "Subsystem sftp internal-sftp", "LogLevel ERROR", "",
    ]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    log = d / "sshd.log"
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log_fh)
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"sshd could not start here: {log.read_text(errors='replace').strip()[:200]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.skip("sshd did not open its port within 10 s")
    options = ("StrictHostKeyChecking=no", f"UserKnownHostsFile={d / 'known_hosts'}", "LogLevel=ERROR")
    yield {"url": f"ssh://{getpass.getuser()}@127.0.0.1:{port}", "identity": str(d / "client_key"),
           "options": options, "port": port}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return export_bundle(ExportConfig("classifier4", "features.1", precision="int8", input_shape=(1, 32, 32),
                                      calib_size=32, eval_size=16), tmp_path_factory.mktemp("rb") / "c4")


def _device(sshd, **kw):
    from edgesplit.devices.remote import SshDevice, parse_device

    return SshDevice(parse_device(sshd["url"]), python=sys.executable, identity=sshd["identity"],
                     options=sshd["options"], **kw)


def _cli_device_args(sshd):
    args = ["--device", sshd["url"], "--ssh-identity", sshd["identity"], "--remote-python", sys.executable]
    for option in sshd["options"]:
        args += ["--ssh-option", option]
    return args


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


def test_unreachable_host_says_so(sshd):
    from edgesplit.devices.remote import SshDevice, parse_device

    closed = _free_port()
    device = SshDevice(parse_device(f"ssh://nobody@127.0.0.1:{closed}"), identity=sshd["identity"],
                       options=sshd["options"], connect_timeout=3)
    with pytest.raises(DeviceError, match=r"cannot reach ssh://nobody@127.0.0.1:\d+ .*Connection refused"):
        device.mkdtemp()


def test_failed_remote_command_shows_remote_stderr(sshd, bundle):
    from edgesplit.runtime.remote_jobs import profile_remote

    device = _device(sshd)
    object.__setattr__(device, "python", "/nonexistent/python3")
    with pytest.raises(DeviceError, match="runner failed on ssh://.*(No such file|not found)"):
        profile_remote(device, bundle.path)


def test_remote_runner_errors_come_back_as_one_line(sshd, tmp_path):
    device = _device(sshd)
    with pytest.raises(DeviceError, match=r"on ssh://.*: .*does not exist"):
        device.run_runner({"action": "profile", "bundle": str(tmp_path / "missing-bundle")})


def test_arguments_never_reach_a_shell(sshd, tmp_path):
    """A request value full of shell metacharacters travels as data (stdin JSON), never as a command."""
    marker = tmp_path / "pwned"
    device = _device(sshd)
    with pytest.raises(DeviceError):
        device.run_runner({"action": "profile", "bundle": f"x; touch {marker}; $(touch {marker})"})
    assert not marker.exists()


@pytest.mark.parametrize("url", ["ssh://-oProxyCommand=touch@host", "ssh://user@-oProxyCommand=x", "http://host",
                                 "ssh://user@host:99999", "ssh://us;er@host", "ssh://user@host/path"])
def test_bad_device_urls(url):
    from edgesplit.devices.remote import parse_device

    with pytest.raises(DeviceError):
        parse_device(url)
