"""Defenses against model inversion, each inserted at the cut and trained like the model, exported and
audited like any head: noise, top-k, channel subset, dropout, bottleneck, CEM, adversarial training,
Lipschitz regularisation, privacy-oriented pruning, feature normalisation, FFT entropy enhancement."""

from edgesplit.defenses.apply import apply_defense, defended_cut
from edgesplit.defenses.registry import DEFENSES, Defense, get_defense, list_defenses
from edgesplit.defenses.train import DefendConfig, defend_model

__all__ = ["DEFENSES", "DefendConfig", "Defense", "apply_defense", "defend_model", "defended_cut", "get_defense",
           "list_defenses"]
