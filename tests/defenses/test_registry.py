"""The defense registry: every defense with two strengths; unknown names and parameters are named."""

import pytest

from edgesplit.defenses import get_defense, list_defenses
from edgesplit.errors import DefenseError


def test_registry_lists_every_defense_with_two_strengths():
    assert list_defenses() == ["adversarial", "bottleneck", "cem", "channel-subset", "dropout", "fft-entropy",
                               "lipschitz", "noise", "normalize", "pruning", "topk"]
    for name in list_defenses():
        assert len(get_defense(name).strengths) == 2
    with pytest.raises(DefenseError, match="unknown defense 'nosie'.*noise"):
        get_defense("nosie")
    with pytest.raises(DefenseError, match="no parameter 'sigma'.*std"):
        get_defense("noise").resolve({"sigma": 0.1})
    with pytest.raises(DefenseError, match="must be a number >= 0"):
        get_defense("noise").resolve({"std": -1})
