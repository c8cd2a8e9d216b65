"""The target model a sweep or a preset attacks, when it has to be trained first: one place for loading the
data's train/test splits at the model's input and training it to a checkpoint."""

from __future__ import annotations

from pathlib import Path

from edgesplit.progress import Progress


def load_splits(data: str, root: str | None, img_size: int, channels: int, seed: int):
    """(train, test) splits of `data` shaped for a model taking `channels` x `img_size` x `img_size`."""
    from edgesplit.data import load_dataset

    common = dict(root=root, img_size=img_size, channels=channels, seed=seed)
    return load_dataset(data, split="train", **common), load_dataset(data, split="test", **common)


def train_target(name: str, data: str, root: str | None, in_chans: int, img_size: int, epochs: int, seed: int,
                 path: str | Path, progress: Progress | None = None, device: str = "cpu",
                 **model_kwargs) -> tuple[Path, float]:
    """Train model `name` on the train split of `data`; save it to `path`; return (path, test accuracy)."""
    from edgesplit.models import create_model, save_checkpoint, train_classifier
    from edgesplit.models.training import TrainConfig

    train_set, test_set = load_splits(data, root, img_size, in_chans, seed)
    model = create_model(name, num_classes=train_set.info.num_classes, in_chans=in_chans, img_size=img_size,
                         seed=seed, **model_kwargs)
    result = train_classifier(model, train_set, test_set, TrainConfig(epochs=epochs, seed=seed), device=device,
                              progress=progress)
    return save_checkpoint(model, path, metrics={"test_accuracy": result.test_accuracy}), result.test_accuracy
