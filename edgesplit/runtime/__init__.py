"""Runtime: run bundles on this device — latency/memory Measurements and the exact features it emits.

Torch-free except the `torch`/`torch-cuda` backends and host-side data loading (`emit_split`).
"""

from edgesplit.runtime.backends import BACKENDS, Backend, get_backend
from edgesplit.runtime.featurefile import FeatureFile, load_features
from edgesplit.runtime.pack import pack_bundle, unpack_bundle
from edgesplit.runtime.timing import TimingConfig

__all__ = ["BACKENDS", "Backend", "FeatureFile", "TimingConfig", "get_backend", "load_features", "pack_bundle",
           "unpack_bundle"]
