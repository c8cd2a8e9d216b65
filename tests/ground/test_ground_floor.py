"""The ground floor's generic registry and shared vocabulary."""

import pytest

from edgesplit.errors import AttackError, EdgesplitError
from edgesplit.registry import Registry
from edgesplit.vocab import BYTES_PER_VALUE, DEFAULT_WIRE, PRECISIONS, WIRE_DTYPES, WIRES, precision_list


def _colours() -> Registry:
    reg = Registry("colour", AttackError, hint="'edgesplit colours' lists them")
    reg.add("red", "the colour of blood")
    reg.add("green", "the colour of grass")
    return reg


def test_registry_gets_lists_and_keeps_order():
    reg = _colours()
    assert reg.get("red") == "the colour of blood"
    assert reg.names() == ["red", "green"] and reg.names(sort=True) == ["green", "red"]
    assert "green" in reg and "blue" not in reg and len(reg) == 2 and list(reg) == ["red", "green"]
    assert reg.find("blue") is None


def test_registry_names_the_nearest_entries_and_where_to_look():
    with pytest.raises(AttackError, match=r"unknown colour 'gren' \(closest: green[^)]*\); 'edgesplit colours' lists"):
        _colours().get("gren")


def test_registry_refuses_a_second_entry_of_one_name():
    reg = _colours()
    with pytest.raises(AttackError, match="registered twice"):
        reg.add("red", "again")


def test_registry_loads_lazily_once():
    calls = []
    reg: Registry = Registry("thing", EdgesplitError, load=lambda: calls.append(reg.add("late", 1)))
    assert not calls
    assert reg.get("late") == 1 and reg.names() == ["late"] and len(calls) == 1


def test_registry_describes_from_a_description_or_docstring():
    reg: Registry = Registry("model")

    class Entry:
        description = "a small CNN\nsecond line"

    def builder():
        """Builds a ResNet.

        More text."""

    reg.add("cnn", Entry())
    reg.add("resnet", builder)
    assert reg.describe("cnn") == "a small CNN" and reg.describe("resnet") == "Builds a ResNet."


def test_vocabulary_is_consistent():
    assert PRECISIONS == ("fp32", "fp16", "int8") and set(WIRES) == set(PRECISIONS)
    assert BYTES_PER_VALUE == {"fp32": 4, "fp16": 2, "int8": 1}
    assert set(WIRE_DTYPES) == set(WIRES) and DEFAULT_WIRE["int8"] == "int8"


def test_precision_list_parses_any_case_and_refuses_unknown_names():
    assert precision_list("FP32, int8,fp32") == ["fp32", "int8"]
    with pytest.raises(ValueError, match="'fp8'"):
        precision_list("fp32,fp8")
    with pytest.raises(ValueError):
        precision_list(" , ")
