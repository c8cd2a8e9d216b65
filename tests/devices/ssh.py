"""A real sshd on 127.0.0.1 with throwaway keys, and a bundle to run through it.

The sshd is started by the fixture; `.ci/run` installs openssh-server if missing. Tests that use it skip,
saying why, only where sshd cannot be started. A module imports the fixtures it uses, which pytest then
registers as the module's own (so the sshd is started once per module):

    from tests.devices.ssh import loopback_sshd, remote_bundle  # noqa: F401 - fixtures 'sshd', 'bundle'
"""

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from edgesplit.export import ExportConfig, export_bundle

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", name="sshd")
def loopback_sshd(tmp_path_factory):
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


@pytest.fixture(scope="module", name="bundle")
def remote_bundle(tmp_path_factory):
    return export_bundle(ExportConfig("classifier4", "features.1", precision="int8", input_shape=(1, 32, 32),
                                      calib_size=32, eval_size=16), tmp_path_factory.mktemp("rb") / "c4")
