"""Remote devices over a real sshd on 127.0.0.1 (throwaway keys): the failure messages, and URLs refused.

The sshd is started by the test (tests/devices/ssh.py); `.ci/run` installs openssh-server if missing. The
test skips, saying why, only where sshd cannot be started. Profiling and emitting over ssh through the
command line are in tests/cli/test_runtime.py.
"""

import sys

import pytest

from edgesplit.errors import DeviceError
from tests.devices.ssh import _free_port, loopback_sshd, remote_bundle  # noqa: F401 - the fixtures 'bundle', 'sshd'


def _device(sshd, **kw):
    from edgesplit.devices.remote import SshDevice, parse_device

    return SshDevice(parse_device(sshd["url"]), python=sys.executable, identity=sshd["identity"],
                     options=sshd["options"], **kw)


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
