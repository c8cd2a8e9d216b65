"""Remote devices over SSH: `ssh://user@host[:port]` — copy files, run the on-device runner, copy results back.

No argument ever reaches a remote shell unquoted: the remote command is a fixed module invocation (each
token passed through shlex.quote), request data goes over stdin as JSON, and remote paths are ones this
module created with mktemp and validated. Local commands are argument lists, never shell strings.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from edgesplit.errors import DeviceError

RUNNER_MODULE = "edgesplit.runtime.device_runner"
_SAFE_REMOTE_PATH = re.compile(r"^/[A-Za-z0-9_./-]+$")


@dataclass(frozen=True)
class SshTarget:
    user: str | None
    host: str
    port: int = 22

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        return f"ssh://{self.destination}:{self.port}"


def parse_device(url: str) -> SshTarget:
    """'ssh://user@host[:port]' -> SshTarget; anything else is a DeviceError saying the expected form."""
    parsed = urlparse(url)
    if parsed.scheme != "ssh" or not parsed.hostname or parsed.path not in ("", "/"):
        raise DeviceError(f"device {url!r} is not of the form ssh://user@host[:port] (or 'local')")
    host = parsed.hostname
    if host.startswith("-") or not re.match(r"^[A-Za-z0-9_.:-]+$", host):
        raise DeviceError(f"device host {host!r} is not a valid host name")
    user = parsed.username
    if user is not None and (user.startswith("-") or not re.match(r"^[A-Za-z0-9_.-]+$", user)):
        raise DeviceError(f"device user {user!r} is not a valid user name")
    try:
        port = parsed.port or 22
    except ValueError:
        raise DeviceError(f"device {url!r} has an invalid port") from None
    return SshTarget(user, host, port)


@dataclass
class SshDevice:
    """A board reachable with key-based ssh (BatchMode: never prompts)."""

    target: SshTarget
    python: str = "python3"
    identity: str | None = None
    options: tuple[str, ...] = ()
    connect_timeout: int = 15
    command_timeout: float = 1800.0
    _ssh: tuple[str, ...] = field(default=("ssh",), repr=False)
    _scp: tuple[str, ...] = field(default=("scp",), repr=False)

    def _common(self) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if self.identity:
            opts += ["-i", self.identity]
        for option in self.options:
            opts += ["-o", option]
        return opts

    def _ssh_argv(self, remote_tokens: list[str]) -> list[str]:
        command = " ".join(shlex.quote(t) for t in remote_tokens)
        return [*self._ssh, "-p", str(self.target.port), *self._common(), "--", self.target.destination, command]

    def _call(self, argv: list[str], stdin: bytes | None = None, what: str = "command") -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=self.command_timeout)
        except FileNotFoundError:
            raise DeviceError(f"{argv[0]} is not installed here: install an OpenSSH client") from None
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{what} on {self.target} took longer than {self.command_timeout:.0f} s") from None
        if proc.returncode == 255:
            raise DeviceError(f"cannot reach {self.target} ({_last_line(proc.stderr)}): check the address, that sshd "
                              f"runs there, and key-based login (ssh -p {self.target.port} {self.target.destination})")
        return proc

    def run(self, remote_tokens: list[str], stdin: bytes | None = None, what: str = "command") -> subprocess.CompletedProcess:
        return self._call(self._ssh_argv(remote_tokens), stdin, what)

    def mkdtemp(self) -> str:
        proc = self.run(["mktemp", "-d", "/tmp/edgesplit.XXXXXXXX"], what="mktemp")
        path = proc.stdout.decode(errors="replace").strip()
        if proc.returncode != 0 or not _SAFE_REMOTE_PATH.match(path):
            raise DeviceError(f"could not create a work folder on {self.target}: {_last_line(proc.stderr)}")
        return path

    def put(self, local: Path, remote_dir: str) -> str:
        remote = f"{remote_dir}/{local.name}"
        self._copy([str(local), f"{self.target.destination}:{remote}"], f"copying {local.name} to")
        return remote

    def get(self, remote: str, local: Path) -> Path:
        self._copy([f"{self.target.destination}:{remote}", str(local)], f"copying {Path(remote).name} from")
        return local

    def _copy(self, pair: list[str], what: str) -> None:
        for path in pair:
            if ":" in path and not _SAFE_REMOTE_PATH.match(path.split(":", 1)[1]):
                raise DeviceError(f"refusing unsafe remote path {path!r}")
        argv = [*self._scp, "-q", "-P", str(self.target.port), *self._common(), "--", *pair]
        proc = self._call(argv, what=what)
        if proc.returncode != 0:
            raise DeviceError(f"{what} {self.target} failed: {_last_line(proc.stderr)}")

    def remove(self, remote_dir: str) -> None:
        if _SAFE_REMOTE_PATH.match(remote_dir) and remote_dir.startswith("/tmp/edgesplit."):
            self.run(["rm", "-rf", "--", remote_dir], what="clean-up")

    def run_runner(self, request: dict) -> dict:
        """Run the on-device runner with `request` on stdin; its JSON reply, or DeviceError with remote stderr."""
        proc = self.run([self.python, "-m", RUNNER_MODULE], stdin=json.dumps(request).encode(), what="the runner")
        reply = _json_reply(proc.stdout)
        if reply is None:
            raise DeviceError(f"the runner failed on {self.target} (exit {proc.returncode}): "
                              f"{_last_line(proc.stderr) or 'no output'}; is edgesplit installed there for "
                              f"{self.python}?")
        if not reply.get("ok"):
            raise DeviceError(f"on {self.target}: {reply.get('error')}")
        return reply


def _json_reply(stdout: bytes) -> dict | None:
    for line in reversed(stdout.decode(errors="replace").strip().splitlines()):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "ok" in obj:
            return obj
    return None


def _last_line(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode(errors="replace").strip().splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else ""
