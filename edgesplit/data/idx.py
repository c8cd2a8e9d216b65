"""A validating reader for the idx format of the MNIST family (optionally gzipped).

Parsed by hand so a wrong, truncated or foreign file is reported clearly instead of yielding garbage arrays.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from edgesplit.errors import DataError

UBYTE = 0x08


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array stored in idx file `path`, which must have `ndim` dimensions.

    Raises DataError naming the file when it is not an idx file, has another type or rank, or is truncated.
    """
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}; re-download or re-extract the file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an idx file (bad magic number); expected the MNIST-format "
                        "*-idx3-ubyte / *-idx1-ubyte files")
    if raw[2] != UBYTE:
        raise DataError(f"{path} is an idx file of type 0x{raw[2]:02x}, but only unsigned bytes (0x08) are "
                        "supported; use the original MNIST-format files")
    if raw[3] != ndim:
        raise DataError(f"{path} has {raw[3]} dimensions, expected {ndim} "
                        f"({'images' if ndim == 3 else 'labels'}); check that the file names are not swapped")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: the idx header is incomplete; re-download the file")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != size:
        state = "truncated" if len(raw) - header < size else "longer than its header says"
        raise DataError(f"{path} is {state}: header says {'×'.join(map(str, dims))} = {size} bytes, "
                        f"found {len(raw) - header}; re-download the file")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()
