"""Model options: settings any model takes (`bottleneck=`, `defense=`), applied after its architecture is built.

They are part of the `ModelSpec`, so checkpoints and bundles rebuild them. The package owning an option
registers the function applying it (`fn(model, spec, value)`) here: `models` registers `bottleneck`,
`edgesplit.defenses` registers `defense` when imported. So `models` imports nothing above it, and a spec
using an option whose package was not imported is refused with the package to import.
"""

from __future__ import annotations

from collections.abc import Callable

from edgesplit.errors import ModelError
from edgesplit.models import bottleneck
from edgesplit.registry import Registry

# Every option a spec may carry, in the order they are applied (a defense goes after a bottleneck), and the
# package that registers it.
KNOWN = {
    "bottleneck": "edgesplit.models",  # CEM's channel bottleneck after a module
    "defense": "edgesplit.defenses",  # a defense inserted at a cut (edgesplit defend)
}

OPTIONS: Registry[Callable] = Registry("model option", ModelError)


def register_option(name: str) -> Callable:
    """Decorator: `fn(model, spec, value) -> model` applies the model option `name`."""
    return OPTIONS.register(name)


register_option("bottleneck")(bottleneck.apply_option)


def option_names() -> list[str]:
    """Every option, in application order: the known ones, then any other registered."""
    return [*KNOWN, *(n for n in OPTIONS.names() if n not in KNOWN)]


def split_options(kwargs: dict) -> tuple[dict, dict]:
    """A spec's kwargs -> (the architecture's keyword arguments, the model options)."""
    names = option_names()
    return ({k: v for k, v in kwargs.items() if k not in names},
            {k: kwargs[k] for k in names if k in kwargs})


def apply_options(model, spec, options: dict):
    """Apply each option given (falsy values are off) in order; an unregistered one names its package."""
    for name in option_names():
        if not options.get(name):
            continue
        apply = OPTIONS.find(name)
        if apply is None:
            raise ModelError(f"model option {name!r} comes from {KNOWN.get(name, 'another package')}: "
                             "import it before building this model")
        apply(model, spec, options[name])
    return model
