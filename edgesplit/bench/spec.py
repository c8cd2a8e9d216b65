"""Sweep specs: what to sweep, from a TOML file or from flags, validated and hashed.

    [sweep]
    precisions = ["fp32", "fp16", "int8"]
    backends = ["ort"]                 # any runtime backend; impossible ones are skipped with a reason
    devices = ["local"]                # or "ssh://user@board"
    estimate = ["raspberry-pi-5"]      # roofline head latencies for boards not at hand (labelled estimate)
    decoders = ["auto"]               # "auto": the worst case over deconv and nonoverlap; "all"; or names
    audit = true

    [[sweep.models]]
    name = "classifier4"
    input = "1x32x32"
    cuts = "blocks"                    # or a list of cut names
    checkpoint = "runs/c4/model.pt"    # or train_epochs = 8 (trained on data's train split first)

    [data]  name = "digits", root = ..., calib_size = 256
    [profile]  batches = [1], warmup = 10, iters = 50, min_seconds = 0.5, threads = 0
    [attack]  epochs = 150, budget_s = 0, attack_limit = 0, eval_limit = 256, batch_size = 0,
              learning_curve = true
              (epochs is a ceiling: decoders train in 15-epoch cosine cycles until one gains < 0.5 dB of
              validation PSNR; batch_size 0 picks about 40 steps an epoch; budget_s > 0 caps each audit's
              training time, and its record says it was cut short)

    defenses = [{name = "noise", params = {std = 0.1}, epochs = 5}, "normalize"]   (in [sweep])

Unknown keys are refused with the closest known one; the spec's sha256 (of its canonical JSON) tags every
result row, so a results file is never silently shared by two specs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edgesplit.errors import BenchError, EdgesplitError, closest

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    input: str = "3x32x32"
    cuts: str | tuple[str, ...] = "blocks"
    checkpoint: str | None = None
    train_epochs: int = 0  # > 0 and no checkpoint: train on the data's train split first

    @property
    def input_shape(self) -> tuple[int, int, int]:
        parts = self.input.lower().split("x")
        try:
            c, h, w = (int(p) for p in parts)
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


@dataclass(frozen=True)
class ProfileSpec:
    batches: tuple[int, ...] = (1,)
    warmup: int = 10
    iters: int = 50
    min_seconds: float = 0.5
    threads: int = 0  # 0: the runtime's default


@dataclass(frozen=True)
class AttackSpec:
    epochs: int = 150  # a ceiling: each decoder trains until its validation loss stops improving
    attack_limit: int = 0  # 0: the whole attack split
    eval_limit: int = 256
    batch_size: int = 0  # 0: automatic (about 40 steps an epoch)
    patience: int = 6
    budget_s: float = 0.0  # > 0: the most seconds one audit may train for (its record says if it was cut short)
    learning_curve: bool = True  # at the first audited precision of each cut: 25 % / 50 % / 100 % of the data


@dataclass(frozen=True)
class SweepSpec:
    models: tuple[ModelEntry, ...]
    precisions: tuple[str, ...] = PRECISIONS
    backends: tuple[str, ...] = ("ort",)
    devices: tuple[str, ...] = ("local",)
    estimate: tuple[str, ...] = ()
    decoders: tuple[str, ...] = ("auto",)
    audit: bool = True
    defenses: tuple[DefenseEntry, ...] = ()
    data: DataSpec = field(default_factory=DataSpec)
    profile: ProfileSpec = field(default_factory=ProfileSpec)
    attack: AttackSpec = field(default_factory=AttackSpec)

    def __post_init__(self) -> None:
        if not self.models:
            raise BenchError("the sweep names no model: add a [[sweep.models]] table (name, input)")
        for p in self.precisions:
            if p not in PRECISIONS:
                raise BenchError(f"unknown precision {p!r} ({closest(p, PRECISIONS)})")
        if not self.precisions or not self.backends or not self.devices:
            raise BenchError("precisions, backends and devices must each name at least one")
        if self.audit and not self.decoders:
            raise BenchError("audit = true needs at least one decoder (or set audit = false)")
        from edgesplit.runtime.backends import BACKENDS

        for b in self.backends:
            if b not in BACKENDS:
                raise BenchError(f"unknown backend {b!r} ({closest(b, BACKENDS)})")
        for d in self.devices:
            if d != "local" and not d.startswith("ssh://"):
                raise BenchError(f"device {d!r} is neither 'local' nor ssh://[user@]host[:port]")
        from edgesplit.attacks.decoders import resolve_families
        from edgesplit.devices.profiles import get_profile

        try:
            resolve_families(self.decoders)
        except EdgesplitError as exc:
            raise BenchError(f"decoders: {exc}") from None
        for name in self.estimate:
            try:
                get_profile(name)
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
        for m in self.models:
            m.input_shape  # noqa: B018 - validates
        if any(b < 1 for b in self.profile.batches) or self.profile.iters < 1:
            raise BenchError("profile batches and iters must be >= 1")
        if self.attack.epochs < 1 or self.attack.patience < 1 or self.attack.batch_size < 0 or self.attack.budget_s < 0:
            raise BenchError("[attack] needs epochs >= 1, patience >= 1, batch_size >= 0 (0: automatic) and "
                             "budget_s >= 0 (0: no budget)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["models"] = [{**asdict(m), "cuts": m.cuts if isinstance(m.cuts, str) else list(m.cuts)}
                       for m in self.models]
        return d

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @property
    def ordered_precisions(self) -> tuple[str, ...]:
        """fp32 first when auditing: the transfer attacker of the other precisions trains on its features."""
        return tuple(sorted(self.precisions, key=lambda p: p != "fp32")) if self.audit else self.precisions


_TOP = {"sweep", "data", "profile", "attack"}
_SWEEP = {f.name for f in fields(SweepSpec)} - {"data", "profile", "attack"}


def _check_keys(where: str, given: dict, known: set[str]) -> None:
    for key in given:
        if key not in known:
            raise BenchError(f"unknown key {key!r} in {where} ({closest(key, sorted(known))})")


def _tuple(value, where: str) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    raise BenchError(f"{where} must be a list, got {value!r}")


def spec_from_dict(raw: dict) -> SweepSpec:
    _check_keys("the spec", raw, _TOP)
    sweep = dict(raw.get("sweep", {}))
    _check_keys("[sweep]", sweep, _SWEEP)
    models = []
    for i, m in enumerate(sweep.pop("models", [])):
        if not isinstance(m, dict) or "name" not in m:
            raise BenchError(f"[[sweep.models]] entry {i + 1} needs a name (e.g. name = \"resnet18\")")
        _check_keys(f"[[sweep.models]] {m.get('name')}", m, {f.name for f in fields(ModelEntry)})
        if "cuts" in m and not isinstance(m["cuts"], str):
            m = {**m, "cuts": tuple(m["cuts"])}
        models.append(ModelEntry(**m))
    sections = {}
    for name, cls in (("data", DataSpec), ("profile", ProfileSpec), ("attack", AttackSpec)):
        section = dict(raw.get(name, {}))
        _check_keys(f"[{name}]", section, {f.name for f in fields(cls)})
        if name == "profile" and "batches" in section:
            section["batches"] = tuple(int(b) for b in _tuple(section["batches"], "profile.batches"))
        sections[name] = cls(**section)
    defenses = []
    for i, d in enumerate(sweep.pop("defenses", [])):
        if isinstance(d, str):
            d = {"name": d}
        if not isinstance(d, dict) or "name" not in d:
            raise BenchError(f"defenses entry {i + 1} needs a name (e.g. {{name = \"noise\", params = {{std = 0.1}}}})")
        _check_keys(f"defenses entry {d.get('name')}", d, {f.name for f in fields(DefenseEntry)})
        defenses.append(DefenseEntry(**d))
    if defenses:
        sweep["defenses"] = tuple(defenses)
    for key in ("precisions", "backends", "devices", "estimate", "decoders"):
        if key in sweep:
            sweep[key] = _tuple(sweep[key], f"sweep.{key}")
    try:
        return SweepSpec(models=tuple(models), **sweep, **sections)
    except TypeError as exc:
        raise BenchError(f"bad value in the spec: {exc}") from None


def load_spec(path: str | Path) -> SweepSpec:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"sweep spec {path} does not exist: write one (see 'edgesplit sweep --help')")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path} is not valid TOML: {exc}") from None
    return spec_from_dict(raw)
