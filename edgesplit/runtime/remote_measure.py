"""`SshMeasurer`: `export --int8-scope auto --device ssh://...` measures the INT8 candidates on the board.

It is an `export.int8_measure.Measurer`: `int8_scope.choose_scope` decides exactly as it does on this host,
while every measurement runs in the on-device runner (`device_runner`, requests `int8_host`, `profile_nodes`,
`time_heads`): the graphs and the feed are copied into one work folder the board's mktemp made (removed by
`close`), each request goes over stdin as JSON, and the replies carry the per-kernel medians and each timing
pass's call times. Nothing is sent before the first measurement is asked for, so an export that measures
nothing (`--int8-scope all`) never contacts the board.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgesplit.devices.remote import SshDevice
from edgesplit.export.node_profile import NodeProfile


class SshMeasurer:
    """Measures on a board over ssh, through the on-device runner."""

    def __init__(self, device: SshDevice, threads: int | None = None):
        self.device = device
        self.threads = threads
        self.where = str(device.target)
        self._host: dict | None = None
        self._staging: tempfile.TemporaryDirectory | None = None
        self._workdir: str | None = None
        self._sent: dict[Path, str] = {}  # local file -> its copy on the board
        self._heads: list[str] = []
        self._feed: str | None = None

    @property
    def target(self) -> str:
        return self.measured_on()["target"]

    def measured_on(self) -> dict:
        """The board as its runner describes itself (CPU, INT8 flags and target, onnxruntime), and its address."""
        if self._host is None:
            reply = self.device.run_runner({"action": "int8_host", "threads": self.threads})
            self._host = {**reply["host"], "device": self.where, "measured_by": "the on-device runner over ssh"}
        return dict(self._host)

    def profile(self, graph: Path, feed: dict[str, np.ndarray]) -> NodeProfile:
        reply = self.device.run_runner({"action": "profile_nodes", "graph": self._send(graph),
                                        "feed": self._send_feed(feed), "threads": self.threads})
        return NodeProfile.from_dict(reply["profile"])

    def open(self, heads: list[Path], feed: dict[str, np.ndarray]) -> None:
        self._heads = [self._send(head) for head in heads]
        self._feed = self._send_feed(feed)

    def time_pass(self) -> list[list[float]]:
        reply = self.device.run_runner({"action": "time_heads", "heads": self._heads, "feed": self._feed,
                                        "threads": self.threads})
        times = reply["times_ms"]
        if len(times) != len(self._heads):
            from edgesplit.errors import DeviceError

            raise DeviceError(f"the runner on {self.where} timed {len(times)} heads of {len(self._heads)} sent: "
                              f"update edgesplit there to this version")
        return [[float(t) for t in head] for head in times]

    def close(self) -> None:
        if self._workdir is not None:
            self.device.remove(self._workdir)
        if self._staging is not None:
            self._staging.cleanup()
        self._workdir, self._staging, self._sent = None, None, {}
        self._heads, self._feed = [], None  # their copies went with the board's work folder

    def _send(self, local: Path) -> str:
        """The board's copy of `local` (copied once), under a name made here: files of one name never collide."""
        local = Path(local).resolve()
        if local not in self._sent:
            staged = self._staged(f"{len(self._sent):02d}{local.suffix}")
            staged.write_bytes(local.read_bytes())
            self._sent[local] = self.device.put(staged, self._workdir)
        return self._sent[local]

    def _send_feed(self, feed: dict[str, np.ndarray]) -> str:
        """The feed's copy on the board: one feed per export (`choose_scope` measures every graph on one)."""
        if self._feed is None:
            staged = self._staged("feed.npz")
            np.savez(staged, **feed)
            self._feed = self._send(staged)
        return self._feed

    def _staged(self, name: str) -> Path:
        """A path in the local staging folder; the board's work folder is made with it, on first use."""
        if self._workdir is None:
            self._staging = tempfile.TemporaryDirectory(prefix="edgesplit-measure-")
            self._workdir = self.device.mkdtemp()
        return Path(self._staging.name) / name
