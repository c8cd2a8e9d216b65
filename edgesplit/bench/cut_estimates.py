"""Roofline estimates per cut for a board not at hand: labelled `kind: "estimate"`, never mixed with measurements.

In bench, not runtime: it builds the model (any checkpoint, defended ones included), which the torch-free
runtime does not."""

from __future__ import annotations

from edgesplit.devices.boards import get_board
from edgesplit.devices.roofline import bytes_moved_for_head, estimate_latency
from edgesplit.errors import DeviceError, closest
from edgesplit.vocab import BYTES_PER_VALUE, PRECISIONS

SCHEMA = "edgesplit.estimate"


def estimate_cuts(model_name: str, input_shape: tuple[int, int, int], board_name: str,
                  precisions=PRECISIONS, checkpoint: str | None = None, efficiency: float = 0.5,
                  granularity: str = "block", cut_points: list | None = None) -> list[dict]:
    """One estimate row per (block cut, precision): latency from MACs and bytes moved vs the board's peaks.

    `cut_points`: these CutPoints (e.g. an ONNX model's) instead of the named model's cuts at `granularity`."""
    import torch

    import edgesplit.defenses  # noqa: F401 - registers the 'defense' model option (a defended checkpoint)
    from edgesplit.models import analyse, create_model

    board = get_board(board_name)
    for precision in precisions:
        if precision not in PRECISIONS:
            raise DeviceError(f"unknown precision {precision!r} ({closest(precision, PRECISIONS)})")
    c, h, w = input_shape
    if cut_points is None:
        model = create_model(model_name, in_chans=c, img_size=h, checkpoint=checkpoint)
        cut_points = analyse(model, torch.zeros(1, c, h, w)).all(granularity)
    rows = []
    for cut in cut_points:
        for precision in precisions:
            width = 4 if precision == "int8" else BYTES_PER_VALUE[precision]  # int8 heads take float input
            input_bytes = c * h * w * width
            moved = bytes_moved_for_head(cut.params, input_bytes, cut.payload_bytes[precision], precision)
            est = estimate_latency(cut.macs, moved, board, precision, efficiency)
            rows.append({"schema": SCHEMA, "schema_version": 1, **est.to_dict(), "model": model_name,
                         "cut": cut.name, "batch": 1, "macs": cut.macs, "params": cut.params,
                         "bytes_moved": moved, "payload_bytes_per_sample": cut.payload_bytes[precision],
                         "latency_ms": {"estimate": est.seconds * 1e3}})
    return rows
