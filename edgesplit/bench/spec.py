"""Sweep specs: what to sweep, from a TOML file or from flags, validated and hashed.

    [sweep]
    precisions = ["fp32", "fp16", "int8"]
    backends = ["ort"]                 # any runtime backend; impossible ones are skipped with a reason
    devices = ["local"]                # or "ssh://user@board"
    estimate = ["raspberry-pi-5-8gb"]  # roofline head latencies for boards not at hand (labelled estimate)
    decoders = ["auto"]               # "auto": the worst case over deconv and nonoverlap; "all"; or names
    audit = true
    int8_scope = "auto"                # or "all"; auto measures INT8 heads on the one device swept
    train_device = "auto"              # train/defend/audit steps on cpu, cuda or auto (cuda if any); not hashed

    [[sweep.models]]
    name = "classifier4"
    input = "1x32x32"
    cuts = "blocks"                    # or a list of cut names
    checkpoint = "runs/c4/model.pt"    # relative to the spec file's folder, as every path here; or
                                       # train_epochs = 8 (trained on data's train split first)

    [[sweep.models]]                   # a shipped ONNX model (one image input), swept as it is
    onnx = "exports/model.onnx"        # relative to the spec file's folder; name defaults to the file's stem
    cuts = "blocks"                    # or a list of the graph's tensor names
    input = "3x64x64"                  # only needed when the file's H/W are dynamic

    [data]
    name = "digits"                    # or "faces"; other data sets need root = "local/copy"
    calib_size = 256
    seed = 0

    [profile]
    batches = [1]
    warmup = 20
    iters = 200
    min_seconds = 2.0
    threads = 0
    cuda_graph = true                  # torch-cuda: graphs or fail; false: eager; absent: graphs where capture works

    [attack]
    epochs = 150      # a ceiling: 15-epoch cosine cycles until one gains < 0.5 dB of validation PSNR
    budget_s = 0      # > 0 caps each audit's training time (its record says it was cut short)
    batch_size = 0    # 0 picks about 40 steps an epoch
    attack_limit = 0
    eval_limit = 256
    patience = 6
    learning_curve = true

    defenses = [{name = "noise", params = {std = 0.1}, epochs = 5}, "normalize"]   (in [sweep])

The whole spec is checked before any work: an unknown key is refused with the closest known one, a value of
the wrong type or range with the form it takes (`iters must be a whole number, e.g. iters = 200`). The spec's
sha256 (of its canonical JSON) tags every result row: a results file is never silently shared by two specs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgesplit.bench.spec_values import at_least, refuse_for_onnx
from edgesplit.errors import BenchError, EdgesplitError, closest
from edgesplit.vocab import INT8_SCOPES, PRECISIONS, parse_chw


@dataclass(frozen=True)
class SweepModel:
    name: str
    input: str | None = "3x32x32"  # None: an ONNX model's own input (its H/W fixed in the file)
    cuts: str | tuple[str, ...] = "blocks"
    checkpoint: str | None = None
    train_epochs: int = 0  # > 0 and no checkpoint: train on the data's train split first
    onnx: str | None = None  # a shipped ONNX file, as the spec names it (its cuts are the graph's tensors)
    spec_dir: str | None = field(default=None, compare=False, repr=False, metadata={"key": False})  # paths' base

    def __post_init__(self) -> None:
        at_least(f"[[sweep.models]] {self.name}", self, train_epochs=0)
        if self.input is not None or self.onnx is None:
            self.input_shape  # noqa: B018 - validates
        if self.onnx is not None:
            for key, given in (("checkpoint", self.checkpoint is not None), ("train_epochs", self.train_epochs > 0)):
                if given:
                    refuse_for_onnx(self.name, key)
            where = f"[[sweep.models]] {self.name}: onnx = \"{self.onnx}\""
            if not self.onnx.lower().endswith(".onnx"):
                raise BenchError(f"{where} does not name an .onnx file")
            if not self.onnx_path.is_file():
                raise BenchError(f"{where}: {self.onnx_path} is not a file (a relative path is read from "
                                 f"{_base(self.spec_dir)})")

    @property
    def onnx_path(self) -> Path | None:
        """The ONNX file, a relative `onnx` read from the spec file's folder (`spec_dir`; None: the working one)."""
        return None if self.onnx is None else from_spec(self.onnx, self.spec_dir)

    @property
    def checkpoint_path(self) -> str | None:
        """The checkpoint, a relative `checkpoint` read from the spec file's folder, as `onnx` is."""
        return None if self.checkpoint is None else str(from_spec(self.checkpoint, self.spec_dir))

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        """(C, H, W); None for an ONNX model that takes its input from the file (the sweep reads it there)."""
        if self.input is None:
            return None
        try:
            c, h, w = parse_chw(self.input)
        except ValueError:
            raise BenchError(f"model {self.name}: input {self.input!r} is not CxHxW (e.g. 3x32x32)") from None
        if h != w or min(c, h) < 1:
            raise BenchError(f"model {self.name}: input {self.input!r} must be square, e.g. 3x64x64")
        return c, h, w


@dataclass(frozen=True)
class DefenseEntry:
    """One defense to sweep: applied at every cut of every model, fine-tuned for `epochs`."""

    name: str
    params: dict = field(default_factory=dict)
    epochs: int = 5

    def __post_init__(self) -> None:
        at_least(f"defenses entry {self.name}", self, epochs=0)

    @property
    def label(self) -> str:
        shown = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({shown})" if shown else self.name


@dataclass(frozen=True)
class DataSpec:
    name: str = "digits"
    root: str | None = None
    calib_size: int = 256
    seed: int = 0
    spec_dir: str | None = field(default=None, compare=False, repr=False, metadata={"key": False})  # root's base

    @property
    def root_path(self) -> str | None:
        """The data set's folder, a relative `root` read from the spec file's folder, as a model's `onnx` is."""
        return None if self.root is None else str(from_spec(self.root, self.spec_dir))

    def __post_init__(self) -> None:
        from edgesplit.data.catalog import EMBEDDED, list_datasets

        if self.name not in list_datasets():
            raise BenchError(f"[data] name = {self.name!r} is not a data set ({closest(self.name, list_datasets())})")
        if self.root is None and self.name not in EMBEDDED:
            raise BenchError(f"[data] {self.name} needs root = \"path/to/a/local/copy\" (only "
                             f"{' and '.join(EMBEDDED)} are embedded)")
        at_least("[data]", self, calib_size=1, seed=0)


@dataclass(frozen=True)
class TimingSpec:
    batches: tuple[int, ...] = (1,)
    warmup: int = 20  # the standalone 'edgesplit profile' defaults: at 50 calls / 0.5 s, the demo's
    iters: int = 200  # sub-millisecond heads read -14 % to +41 % off Polygraphy (benchmarks/sweep_timing.py)
    min_seconds: float = 2.0
    threads: int = 0  # 0: the runtime's default
    cuda_graph: bool | None = None  # torch-cuda only; absent: graphs where capture works (the reason kept if not)

    def __post_init__(self) -> None:
        if not self.batches or min(self.batches) < 1:
            raise BenchError(f"[profile] batches must be a list of batch sizes >= 1, e.g. batches = [1, 8]; "
                             f"got {list(self.batches)}")
        at_least("[profile]", self, warmup=0, iters=1, min_seconds=0, threads=0)


@dataclass(frozen=True)
class AttackSpec:
    epochs: int = 150  # a ceiling: each decoder trains until its validation loss stops improving
    attack_limit: int = 0  # 0: the whole attack split
    eval_limit: int = 256
    batch_size: int = 0  # 0: automatic (about 40 steps an epoch)
    patience: int = 6
    budget_s: float = 0.0  # > 0: the most seconds one audit may train for (its record says if it was cut short)
    learning_curve: bool = True  # at the first audited precision of each cut: 25 % / 50 % / 100 % of the data

    def __post_init__(self) -> None:
        at_least("[attack]", self, epochs=1, attack_limit=0, eval_limit=0, batch_size=0, patience=1, budget_s=0)


@dataclass(frozen=True)
class SweepSpec:
    models: tuple[SweepModel, ...]
    precisions: tuple[str, ...] = PRECISIONS
    backends: tuple[str, ...] = ("ort",)
    devices: tuple[str, ...] = ("local",)
    estimate: tuple[str, ...] = ()
    decoders: tuple[str, ...] = ("auto",)
    audit: bool = True
    int8_scope: str = "auto"  # export's: auto keeps float the nodes slower in INT8 on the device; all: every node
    defenses: tuple[DefenseEntry, ...] = ()
    data: DataSpec = field(default_factory=DataSpec)
    profile: TimingSpec = field(default_factory=TimingSpec)
    attack: AttackSpec = field(default_factory=AttackSpec)
    train_device: str = "auto"  # where it trains, not what is asked: left out of the hash (see to_dict)

    def __post_init__(self) -> None:
        if self.train_device.split(":", 1)[0] not in ("auto", "cpu", "cuda"):
            raise BenchError(f'[sweep] train_device = "{self.train_device}" is not a device: write "cpu", "cuda" '
                             f'(or "cuda:N") or "auto"')
        if not self.models:
            raise BenchError("the sweep names no model: add a [[sweep.models]] table (name, input)")
        for p in self.precisions:
            if p not in PRECISIONS:
                raise BenchError(f"unknown precision {p!r} ({closest(p, PRECISIONS)})")
        if self.int8_scope not in INT8_SCOPES:
            raise BenchError(f"unknown int8_scope {self.int8_scope!r} ({closest(self.int8_scope, INT8_SCOPES)})")
        if not self.precisions or not self.backends or not self.devices:
            raise BenchError("precisions, backends and devices must each name at least one")
        if self.audit and not self.decoders:
            raise BenchError("audit = true needs at least one decoder (or set audit = false)")
        from edgesplit.runners import BACKENDS

        for b in self.backends:
            if b not in BACKENDS:
                raise BenchError(f"unknown backend {b!r} ({closest(b, BACKENDS)})")
        for d in self.devices:
            if d != "local" and not d.startswith("ssh://"):
                raise BenchError(f"device {d!r} is neither 'local' nor ssh://[user@]host[:port]")
            if d != "local" and len(self.devices) > 1 and self.int8_scope == "auto" and "int8" in self.precisions:
                raise BenchError(f'int8_scope = "auto" measures each INT8 head on the one machine it ships to, not '
                                 f'on {" and ".join(self.devices)}: sweep one device, or set int8_scope = "all"')
        from edgesplit.attacks.decoders import resolve_families
        from edgesplit.devices.boards import get_board

        try:
            resolve_families(self.decoders)
        except EdgesplitError as exc:
            raise BenchError(f"decoders: {exc}") from None
        for name in self.estimate:
            try:
                get_board(name)
            except EdgesplitError as exc:
                raise BenchError(f"estimate: {exc}") from None
        from edgesplit.defenses import get_defense

        for d in self.defenses:
            try:
                get_defense(d.name).resolve(d.params)
            except EdgesplitError as exc:
                raise BenchError(f"defenses: {exc}") from None
        if len({d.label for d in self.defenses}) != len(self.defenses):
            raise BenchError("the same defense and parameters are listed twice in defenses")
        shipped = [m for m in self.models if m.onnx is not None]
        if self.defenses and shipped:
            refuse_for_onnx(shipped[0].name, "defenses")
        names = [m.name for m in self.models]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise BenchError(f"model {twice[0]} is listed twice in [[sweep.models]]: its rows would collide; "
                             f"list each model once (every cut of it is swept)")

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if (k, v) != ("int8_scope", "auto")}  # default: old hashes hold
        d["models"] = [_model_dict(m) for m in self.models]
        if d["profile"]["cuda_graph"] is None:  # the hash of a spec without it is unchanged
            del d["profile"]["cuda_graph"]
        del d["train_device"]  # where it trains, not what is asked: the hash of a spec is the same on any machine
        del d["data"]["spec_dir"]  # where the spec file lies is no part of what it asks
        return d

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @property
    def ordered_precisions(self) -> tuple[str, ...]:
        """fp32 first when auditing: the transfer attacker of the other precisions trains on its features."""
        return tuple(sorted(self.precisions, key=lambda p: p != "fp32")) if self.audit else self.precisions


def from_spec(path: str, spec_dir: str | None) -> Path:
    """`path` as a spec names it: `~` expanded, a relative path read from the spec file's folder (None: the working
    one), so that a spec runs the same from any working folder."""
    p = Path(path).expanduser()
    return p if p.is_absolute() or spec_dir is None else Path(spec_dir) / p


def _base(spec_dir: str | None) -> str:
    return "the working folder" if spec_dir is None else f"the spec file's folder, {spec_dir}"


def _model_dict(m: SweepModel) -> dict:
    """One model as the spec's hash reads it: `onnx` only when given (the hash of a spec without it is unchanged)."""
    d = {**asdict(m), "cuts": m.cuts if isinstance(m.cuts, str) else list(m.cuts)}
    del d["spec_dir"]  # where the spec file lies is no part of what it asks
    if d["onnx"] is None:
        del d["onnx"]
    return d
