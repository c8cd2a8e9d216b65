"""Malformed checkpoints, each with the words its one-line error must contain (the models' tests and the
command line's use the same cases)."""

import torch

from edgesplit.models import create_model
from edgesplit.models.checkpoint import FORMAT, VERSION


def _edgesplit_payload(**changes) -> dict:
    model = create_model("classifier4", in_chans=1, seed=0)
    payload = {"format": FORMAT, "version": VERSION, "spec": model.edgesplit_spec.to_dict(),
               "state_dict": model.state_dict(), "metrics": {}}
    for key, value in changes.items():
        if value is KeyError:
            del payload[key]
        else:
            payload[key] = value
    return payload


MALFORMED = {
    "spec-a-string": (_edgesplit_payload(spec="classifier4"), "'spec' is a str"),
    "spec-a-list": (_edgesplit_payload(spec=[1, 2]), "'spec' is a list"),
    "spec-without-name": (_edgesplit_payload(spec={"num_classes": 10}), "needs a 'name'"),
    "spec-classes-a-string": (_edgesplit_payload(spec={"name": "classifier4", "num_classes": "ten"}),
                              "num_classes must be an integer"),
    "no-state_dict": (_edgesplit_payload(state_dict=KeyError), "no 'state_dict'"),
    "state_dict-a-string": (_edgesplit_payload(state_dict="weights"), "'state_dict' is a str"),
    "non-tensor-value": (_edgesplit_payload(state_dict={"fc.0.weight": [1.0, 2.0]}), "is a list, not a tensor"),
    "metrics-a-string": (_edgesplit_payload(metrics="good"), "'metrics' is a str"),
    "a-list": ([torch.zeros(2)], "not a checkpoint"),
    "a-training-dict": ({"epoch": 3, "model": {"w": torch.zeros(2)}}, "it holds epoch, model"),
}
