"""The defenses by name: what each inserts at the cut, what it adds to the training loss, its parameters.

    list_defenses()   -> ["adversarial", "bottleneck", "cem", ...]
    get_defense("noise").resolve({"std": 0.1})  -> {"std": 0.1, "mean": 0.0, ...} (defaults filled, checked)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgesplit.errors import DefenseError, closest
from edgesplit.registry import Registry


@dataclass(frozen=True)
class Defense:
    name: str
    description: str
    source: str
    defaults: dict = field(default_factory=dict)
    strengths: tuple[dict, ...] = ()  # two settings for privacy-utility tables, weaker first
    trains: bool = True  # needs fine-tuning (a loss term or new layers); False: applied as is

    def resolve(self, params: dict | None) -> dict:
        params = dict(params or {})
        for key in params:
            if key not in self.defaults:
                raise DefenseError(f"defense {self.name} has no parameter {key!r} "
                                   f"({closest(key, list(self.defaults))}); it takes {', '.join(self.defaults)}")
        out = {**self.defaults, **params}
        for key, value in out.items():
            default = self.defaults[key]
            numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
            if numeric and value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise DefenseError(f"defense {self.name}: {key} must be a number >= 0, got {value!r}")
        return out


DEFENSES: Registry[Defense] = Registry("defense", DefenseError, hint="'edgesplit defend --list' lists them",
                                      sort=True)
DEFENSES.add_all([
    Defense("noise", "Gaussian noise on the features, in training and on the device", "CEM (sigma 0.01-0.15)",
            {"std": 0.1, "mean": 0.0, "at_inference": True}, ({"std": 0.1}, {"std": 0.5})),
    Defense("topk", "keep the k most active channels per sample, zero the rest", "CEM topkprune",
            {"ratio": 0.5}, ({"ratio": 0.5}, {"ratio": 0.1})),
    Defense("channel-subset", "send a fixed subset of feature maps (the payload shrinks)", "reconstruction seed",
            {"ratio": 0.5, "seed": 0}, ({"ratio": 0.5}, {"ratio": 0.125})),
    Defense("dropout", "dropout on the features, in training and on the device", "CEM dropout",
            {"p": 0.3, "at_inference": True}, ({"p": 0.2}, {"p": 0.5})),
    Defense("bottleneck", "channel-reducing conv + BN + sigmoid after the head, expanded on the server",
            "CEM bottleneck_option", {"channels": 8}, ({"channels": 16}, {"channels": 4})),
    Defense("cem", "conditional-entropy maximisation: noise on the device, and training crowds each class's "
                   "features together under it (a Gaussian bound on I(x; z | y) is minimised)",
            "CEM (lambda 8/16, log entropy, variance threshold 0.125)",
            {"lambda": 8.0, "noise_std": 0.05, "log_entropy": True, "var_threshold": 0.125},
            ({"lambda": 8.0}, {"lambda": 16.0})),
    Defense("adversarial", "min-max with a surrogate decoder: the head learns features it cannot invert",
            "CEM gan_adv; PATROL adversarial reconstruction training", {"beta": 0.5, "decoder_lr": 1e-3},
            ({"beta": 0.3}, {"beta": 1.0})),
    Defense("lipschitz", "block-wise local Lipschitz regularisation of the head with Gaussian delta", "PATROL",
            {"alpha": 0.1, "delta_std": 0.05}, ({"alpha": 0.05}, {"alpha": 0.5})),
    Defense("pruning", "trainable soft channel masks with an L1 penalty, then the weakest channels pruned "
                       "(a smaller head and payload)", "PATROL privacy-oriented pruning",
            {"l1": 1e-3, "keep_ratio": 0.5}, ({"keep_ratio": 0.5}, {"keep_ratio": 0.25})),
    Defense("normalize", "per-sample, per-channel standardisation of the features", "Golden Partition Zone",
            {}, ({}, {})),
    Defense("fft-entropy", "flatten each feature map's spectrum (X / |X|^alpha): higher-entropy features",
            "Golden Partition Zone", {"alpha": 0.5}, ({"alpha": 0.5}, {"alpha": 1.0})),
])


def list_defenses() -> list[str]:
    return DEFENSES.names()


def get_defense(name: str) -> Defense:
    return DEFENSES.get(name)
