"""The words every package shares: head precisions, wire formats, and how many bytes a value takes.

Torch-free and dependency-free on purpose: the device runner, the board profiles and the CLI all read it.
Every other module takes these names from here instead of spelling them out again.
"""

from __future__ import annotations

PRECISIONS = ("fp32", "fp16", "int8")  # what a head computes in
WIRES = ("fp32", "fp16", "int8")  # what crosses the network (an int8 wire carries a scale and zero-point)

# Bytes one value takes at each precision (weights, activations and wire values alike).
BYTES_PER_VALUE = {"fp32": 4, "fp16": 2, "int8": 1}

# numpy dtype names a wire payload may have for each wire format.
WIRE_DTYPES = {"fp32": ("float32",), "fp16": ("float16",), "int8": ("int8", "uint8")}

# Which nodes of an int8 head run in INT8: auto (the ones measured faster in INT8 on this host), all (every one).
INT8_SCOPES = ("auto", "all")

# A head exported at a precision sends that precision's wire unless told otherwise.
DEFAULT_WIRE = {p: p for p in PRECISIONS}


def precision_list(text: str) -> list[str]:
    """'FP32, int8' -> ['fp32', 'int8'] (order kept, duplicates dropped); unknown names raise ValueError."""
    names = [part.strip().lower() for part in str(text).split(",") if part.strip()]
    bad = [n for n in names if n not in PRECISIONS]
    if bad or not names:
        raise ValueError(f"unknown precision {bad[0]!r}" if bad else "no precision given")
    return list(dict.fromkeys(names))


def parse_chw(text: str) -> tuple[int, int, int]:
    """'3x32x32' -> (3, 32, 32): channels x height x width ('X' or '×' too, spaces around numbers allowed).

    The one parser of an input shape written as text (the CLI's --input, a sweep spec's `input`). It checks the
    form only; which sizes a caller accepts (square, at least 8 pixels) is the caller's to say. A malformed text
    raises ValueError naming the form expected.
    """
    parts = str(text).replace("X", "x").replace("×", "x").split("x")
    if len(parts) != 3 or not all(part.strip().isdecimal() for part in parts):
        raise ValueError(f"{text!r} is not CHANNELSxHEIGHTxWIDTH, e.g. 3x32x32")
    c, h, w = (int(part) for part in parts)
    return c, h, w
