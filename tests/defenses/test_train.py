"""Training with a defense: its loss term is live, and pruning makes a smaller head that a checkpoint rebuilds."""

import pytest
import torch

from edgesplit.defenses import DefendConfig, defend_model
from edgesplit.models import create_model, save_checkpoint
from tests.defenses.helpers import CUT, X, _head


@pytest.mark.parametrize("name, term", [("cem", "information_bound"), ("adversarial", "reconstruction_mse"),
                                        ("lipschitz", "lipschitz"), ("pruning", "mask_l1")])
def test_training_defenses_add_a_live_loss_term(name, term, digits):
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model, report = defend_model(model, CUT, name, None, *digits, DefendConfig(epochs=1, batch_size=32))
    assert report["history"][0][term] != 0, f"{name}'s loss term was computed"
    assert report["defended_cut"] == f"{CUT}.defense"
    changed = [k for k, v in model.state_dict().items() if k in before and v.shape == before[k].shape
               and not torch.equal(v, before[k])]
    assert any(k.startswith("features.0") for k in changed), "the head was trained"


def test_pruning_removes_channels_from_the_head_and_rebuilds_from_the_checkpoint(digits, tmp_path):
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0)
    model, report = defend_model(model, CUT, "pruning", {"keep_ratio": 0.25}, *digits,
                                 DefendConfig(epochs=1, batch_size=32))
    conv = dict(model.named_modules())[f"{CUT}.layer.0"]
    assert conv.out_channels == 32 and len(report["params"]["keep"]) == 32, "a smaller head, not just a mask"
    assert _head(model, X).shape == (4, 32, 8, 8)
    path = save_checkpoint(model, tmp_path / "pruned.pt")
    again = create_model("classifier4", checkpoint=str(path))
    with torch.no_grad():
        assert torch.allclose(again.eval()(X), model.eval()(X), atol=1e-6)
