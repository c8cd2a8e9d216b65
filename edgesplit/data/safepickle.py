"""A restricted unpickler for the CIFAR python-version files, which are pickles of numpy arrays and lists.

A pickle can run any function it names; this one resolves only the few numpy/builtin names those files use.
"""

from __future__ import annotations

import builtins
import pickle

import numpy as np

from edgesplit.errors import DataError

try:
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(text, "latin1").
    if encoding.lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError(f"refusing codec {encoding!r}")
    return text.encode("latin1")


_SAFE_BUILTINS = ("bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
                  "set", "slice", "str", "tuple")

ALLOWED = {
    **{(mod, "_reconstruct"): _multiarray._reconstruct for mod in ("numpy.core.multiarray",
                                                                    "numpy._core.multiarray")},
    **{(mod, "scalar"): _multiarray.scalar for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(mod, "_frombuffer"): _numeric._frombuffer for mod in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{(mod, name): getattr(builtins, name) for mod in ("builtins", "__builtin__") for name in _SAFE_BUILTINS},
}


class _Refused(Exception):
    pass


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose `find_class` only returns the numpy/builtin globals listed in ALLOWED.

    Anything else (os.system, eval, ...) is refused before it can be called.
    """

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def load_pickle(path) -> object:
    """Unpickle `path` with `encoding="bytes"`, allowing only numpy arrays and plain containers.

    A pickle naming any other global, or a damaged file, raises DataError naming the file.
    """
    try:
        with open(path, "rb") as fh:
            return RestrictedUnpickler(fh, encoding="bytes").load()
    except _Refused as exc:
        raise DataError(f"refusing to load {path}: the pickle references {exc}, which a CIFAR file never does; "
                        "replace it with the official CIFAR python-version file") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError) as exc:
        raise DataError(f"{path} is not a readable CIFAR pickle ({type(exc).__name__}: {exc}); "
                        "re-extract the official CIFAR python-version archive") from None
