"""edgesplit: split inference on edge devices.

Importing the package is cheap and never imports torch: the heavy parts live in the
subpackages (`edgesplit.models`, `edgesplit.data`, ...), imported where they are used.
"""

from edgesplit.errors import (
    BackendError,
    BundleError,
    CutError,
    DataError,
    DeviceError,
    EdgesplitError,
    ExportError,
    ModelError,
)

__version__ = "0.1.0"

__all__ = ["BackendError", "BundleError", "CutError", "DataError", "DeviceError", "EdgesplitError", "ExportError",
           "ModelError", "__version__"]
