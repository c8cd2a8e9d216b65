"""Runtime: run bundles on this device — latency/memory Measurements and the exact features it emits.

The runners that run a head are `edgesplit.runners` (`get_runner`, `BACKENDS`). Torch-free except the
`torch`/`torch-cuda` runners and host-side data loading (`emit_split`).
"""

from edgesplit.runtime.featurefile import FeatureFile, load_features
from edgesplit.runtime.pack import pack_bundle, unpack_bundle
from edgesplit.runtime.timing import TimingConfig

__all__ = ["FeatureFile", "TimingConfig", "load_features", "pack_bundle", "unpack_bundle"]
