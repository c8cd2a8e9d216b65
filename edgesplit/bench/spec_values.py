"""How a sweep spec's TOML values are checked and shown in its one-line errors: a value as its field's type
(`convert`, or WRONG), the form a type is written in (`form`), minimum values (`at_least`), known keys,
and the keys that do not apply to a shipped ONNX model (`refuse_for_onnx`)."""

from __future__ import annotations

import json
import math
import types
import typing

from edgesplit.errors import BenchError, closest

WRONG = object()


def at_least(where: str, record, **minimum) -> None:
    for key, low in minimum.items():
        value = getattr(record, key)
        if not math.isfinite(value):  # TOML allows nan and inf: min_seconds = inf would never end
            raise BenchError(f"{where} {key} must be a finite number, got {value!r}")
        if value < low:
            raise BenchError(f"{where} {key} must be at least {low}, got {value!r}")


def check_keys(where: str, given: dict, known: set[str]) -> None:
    for key in given:
        if key not in known:
            raise BenchError(f"unknown key {key!r} in {where} ({closest(key, sorted(known))})")


def table(value, where: str, how: str) -> dict:
    if not isinstance(value, dict):
        raise BenchError(f"{where} must be a table ({how}); got {show(value)}")
    return value


def show(value) -> str:
    return json.dumps(value) if isinstance(value, (list, dict, str, bool)) else repr(value)


def convert(hint, value):
    """`value` as type `hint` (lists become tuples, a comma string a tuple of strings), or WRONG."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        for arg in args:
            converted = convert(arg, value)
            if converted is not WRONG:
                return converted
        return WRONG
    if origin is tuple:
        if isinstance(value, str) and args[0] is str:
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            return WRONG
        items = [convert(args[0], v) for v in value]
        return WRONG if any(i is WRONG for i in items) else tuple(items)
    if hint is type(None):
        return value if value is None else WRONG
    if hint is float:  # an int stays an int, so the spec's hash does not change with this check
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else WRONG
    if hint is int and isinstance(value, bool):
        return WRONG
    return value if isinstance(value, hint) else WRONG


def form(hint) -> str:
    """How a value of type `hint` is written, for an error message."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(form(a) for a in args if a is not type(None))
    if origin is tuple:
        return "a list of " + {int: "whole numbers", str: "strings"}.get(args[0], "values")
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
            dict: "a table"}.get(hint, str(hint))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def as_list(value, where: str, how: str) -> list:
    if not isinstance(value, list):
        raise BenchError(f"{where} must be a list ({how}); got {show(value)}")
    return value


def refuse_for_onnx(name: str, key: str) -> None:
    """One line: `key` of the spec does not apply to ONNX model `name`."""
    if key == "defenses":
        raise BenchError(f"[sweep] defenses do not apply to ONNX model {name} (a defense is built into a PyTorch "
                         f"model at the cut): drop defenses, or sweep {name} in a spec of its own")
    why = {"checkpoint": "its weights are in the file", "train_epochs": "it is swept as it was shipped"}[key]
    raise BenchError(f"[[sweep.models]] {name}: {key} does not apply to an ONNX model ({why}); drop {key}")
