"""Models: the zoo (`create_model`, `list_models`), cut points of any module, and `split`.

    model = create_model("resnet18", num_classes=10, img_size=64)
    cuts = cut_points(model, torch.zeros(1, 3, 64, 64))        # block granularity
    s = split(model, "layer2.1")                                # s.head, s.tail
"""

from edgesplit.models.checkpoint import load_checkpoint, save_checkpoint
from edgesplit.models.cuts import GRANULARITIES, CutAnalysis, CutPoint, analyse, cut_points
from edgesplit.models.registry import create_model, list_models, model_entries, register_model
from edgesplit.models.spec import ModelSpec
from edgesplit.models.split import Split, default_input, split
from edgesplit.models.training import TrainResult, evaluate, train_classifier

__all__ = [
    "GRANULARITIES", "CutAnalysis", "CutPoint", "ModelSpec", "Split", "TrainResult", "analyse",
    "create_model", "cut_points", "default_input", "evaluate", "list_models", "load_checkpoint", "model_entries",
    "register_model", "save_checkpoint", "split", "train_classifier",
]
