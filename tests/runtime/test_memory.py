"""An allocator failure while profiling becomes advice: use a smaller batch."""

import pytest

from edgesplit.errors import BackendError
from edgesplit.runtime.profile import profile_bundle
from tests.export.helpers import fp32_bundle, fp32_pristine  # noqa: F401 - the fixtures 'bundle', 'pristine'
from tests.runtime.helpers import FASTEST as FAST


@pytest.mark.parametrize("failure", [MemoryError(), RuntimeError("Failed to allocate memory for requested buffer "
                                                                 "of size 4194304000")])
def test_allocator_failure_while_profiling_becomes_advice(bundle, monkeypatch, failure):
    from edgesplit.runtime import profile

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(profile, "time_runner", fail)
    with pytest.raises(BackendError, match="out of memory running batch 2.*use a smaller batch"):
        profile_bundle(bundle, "ort", [2], FAST)
