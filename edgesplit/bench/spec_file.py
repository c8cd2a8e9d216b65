"""Reading a sweep spec: TOML text or a dict of its tables -> a validated `spec.SweepSpec`.

Every table is checked key by key against the dataclass it builds (`_build`): an unknown key is refused with the
closest known one, a value of the wrong type or range with the form it takes, each as one BenchError line. The
spec's fields, their defaults and what they mean are `spec.py`'s.
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, fields
from pathlib import Path

from edgesplit.bench.spec import AttackSpec, DataSpec, DefenseEntry, SweepModel, SweepSpec, TimingSpec
from edgesplit.bench.spec_values import (
    WRONG,
    as_list,
    check_keys,
    convert,
    form,
    refuse_for_onnx,
    show,
    table,
    toml_value,
)
from edgesplit.errors import BenchError

_TOP = {"sweep", "data", "profile", "attack"}
_SECTIONS = {"data": DataSpec, "profile": TimingSpec, "attack": AttackSpec}
_EXAMPLES = {(SweepModel, "name"): '"resnet18"', (SweepModel, "checkpoint"): '"runs/r18/model.pt"',
             (DataSpec, "root"): '"data/cifar10"', (DefenseEntry, "name"): '"noise"',
             (DefenseEntry, "params"): "{std = 0.1}"}


def _example(cls, f) -> str:
    if (cls, f.name) in _EXAMPLES:
        return f", e.g. {f.name} = {_EXAMPLES[(cls, f.name)]}"
    default = f.default_factory() if f.default_factory is not MISSING else f.default
    return "" if default is MISSING or default is None or default == {} else f", e.g. {f.name} = {toml_value(default)}"


def _build(cls, raw: dict, where: str, tables: tuple[str, ...] = ()) -> dict:
    """The keyword arguments of a `cls` from a TOML table: every key known and of its field's type, or one
    line naming the key and its form. `tables` are fields given as tables of their own (not keys here)."""
    raw = dict(raw)
    keys = [f for f in fields(cls) if f.metadata.get("key", True)]  # the rest are not written in a spec
    check_keys(where, raw, {f.name for f in keys} - set(tables))
    hints = typing.get_type_hints(cls)
    for f in keys:
        if f.name in tables or _is_record(hints[f.name]):
            continue
        if f.name not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                raise BenchError(f"{where} needs {f.name}{_example(cls, f)}")
            continue
        converted = convert(hints[f.name], raw[f.name])
        if converted is WRONG:
            raise BenchError(f"{where} {f.name} must be {form(hints[f.name])}{_example(cls, f)}; "
                             f"got {show(raw[f.name])}")
        raw[f.name] = converted
    return raw


def _is_record(hint) -> bool:
    """A field holding spec records (models, defenses, sections), parsed by its own function."""
    args = typing.get_args(hint)
    return hint in _SECTIONS.values() or (typing.get_origin(hint) is tuple and args[0] in (SweepModel, DefenseEntry))


def _model(raw, i: int, base: str | None = None) -> SweepModel:
    where = f"[[sweep.models]] entry {i + 1}"
    raw = table(raw, where, 'a [[sweep.models]] header, then name = "resnet18" and input = "3x64x64" lines')
    shipped = "onnx" in raw
    if shipped and "name" not in raw:  # named after the file (a wrong onnx value is refused below)
        raw = {**raw, "name": Path(raw["onnx"]).stem if isinstance(raw["onnx"], str) else f"entry {i + 1}"}
    if isinstance(raw.get("name"), str):
        where = f"[[sweep.models]] {raw['name']}"
    if shipped:
        for key in ("checkpoint", "train_epochs"):
            if key in raw:
                refuse_for_onnx(raw.get("name", i + 1), key)
    m = _build(SweepModel, raw, where)
    m["spec_dir"] = base
    if shipped:
        m.setdefault("input", None)  # the file's own
    if isinstance(m.get("cuts"), str) and m["cuts"] != "blocks":  # "layer1, layer2": a list of cut names
        m["cuts"] = tuple(c.strip() for c in m["cuts"].split(",") if c.strip())
    if m.get("cuts") == ("blocks",):
        m["cuts"] = "blocks"
    if "cuts" in m and not m["cuts"]:
        raise BenchError(f'{where} cuts names no cut: write cuts = "blocks" or a list such as ["layer1"]')
    return SweepModel(**m)


def _defense(raw, i: int) -> DefenseEntry:
    if isinstance(raw, str):
        raw = {"name": raw}
    where = f"defenses entry {raw['name'] if isinstance(raw, dict) and isinstance(raw.get('name'), str) else i + 1}"
    raw = table(raw, where, '"noise" or {name = "noise", params = {std = 0.1}}')
    return DefenseEntry(**_build(DefenseEntry, raw, where))


def spec_from_dict(raw: dict, base: str | Path | None = None) -> SweepSpec:
    """A validated SweepSpec from the TOML's tables; any wrong key, type or value is one BenchError line.

    `base`: the folder relative paths (`onnx`, `checkpoint`, `root`) are read from (`load_spec`: the spec file's;
    None: the working one)."""
    check_keys("the spec", raw, _TOP)
    sweep = table(raw.get("sweep", {}), "sweep", "write [sweep] on a line of its own, then key = value lines")
    sweep = _build(SweepSpec, sweep, "[sweep]", tables=tuple(_SECTIONS))
    models = as_list(sweep.pop("models", []), "[sweep] models", 'one [[sweep.models]] table per model')
    sweep["models"] = tuple(_model(m, i, None if base is None else str(base)) for i, m in enumerate(models))
    if "defenses" in sweep:
        defenses = as_list(sweep["defenses"], "[sweep] defenses", 'e.g. defenses = ["noise"]')
        sweep["defenses"] = tuple(_defense(d, i) for i, d in enumerate(defenses))
    for name, cls in _SECTIONS.items():
        section = table(raw.get(name, {}), name, f"write [{name}] on a line of its own, then key = value lines")
        built = _build(cls, section, f"[{name}]")
        if cls is DataSpec:
            built["spec_dir"] = None if base is None else str(base)
        sweep[name] = cls(**built)
    return SweepSpec(**sweep)


def load_spec(path: str | Path) -> SweepSpec:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"sweep spec {path} does not exist: write one (see 'edgesplit sweep --help')")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BenchError(f"sweep spec {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                         f"{exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise BenchError(f"cannot read sweep spec {path} ({exc.strerror or exc})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path} is not valid TOML: {exc}") from None
    return spec_from_dict(raw, path.parent)
