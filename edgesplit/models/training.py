"""Training and evaluating classifiers: seeded, with progress reported through `edgesplit.progress`."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from edgesplit.errors import ModelError
from edgesplit.models.device import autocast, is_cuda, training_on
from edgesplit.progress import Progress, resolve

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 5e-4
    optimizer: str = "adam"
    label_smoothing: float = 0.0
    seed: int = 0
    # Re-estimate BatchNorm running statistics over the training set after each epoch. Short runs with
    # small BN momentum (torchvision's MobileNetV3 uses 0.01) otherwise leave eval mode near chance.
    recalibrate_bn: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:  # BatchNorm needs two samples a batch
            raise ModelError(f"epochs must be >= 1 and batch_size >= 2 (BatchNorm needs two samples a batch); got "
                             f"{self.epochs}, {self.batch_size}")
        if not self.lr > 0:
            raise ModelError(f"learning rate must be > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ModelError(f"unknown optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        if not 0 <= self.label_smoothing < 1:
            raise ModelError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass
class TrainResult:
    config: TrainConfig
    history: list[dict] = field(default_factory=list)  # one row per epoch: loss, train_acc, test_acc, seconds
    test_accuracy: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"config": asdict(self.config), "history": self.history,
                "test_accuracy": self.test_accuracy, "seconds": self.seconds}


def train_classifier(model: nn.Module, train_set: Dataset, test_set: Dataset | None = None,
                     config: TrainConfig | None = None, device: str = "cpu",
                     progress: Progress | None = None) -> TrainResult:
    """Train `model` with cross-entropy (Adam or SGD, cosine schedule); reproducible for a given seed.

    `device` cpu or cuda: on CUDA batches come from worker processes into pinned memory and are copied
    without blocking, forward passes run under bf16 autocast with an fp32 loss (`models.device`)."""
    config = config or TrainConfig()
    if len(train_set) == 0:
        raise ModelError("training set is empty: check the data set, split and --limit")
    if len(train_set) < 2:
        raise ModelError("training set has 1 image: training needs at least 2 (BatchNorm statistics need 2 per "
                         "batch); check the data set, split and --limit")
    progress = resolve(progress)
    torch.manual_seed(config.seed)
    loader = every_sample_loader(train_set, config.batch_size, shuffle=True,
                                 generator=torch.Generator().manual_seed(config.seed), device=device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay, nesterov=True)
    steps = config.epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    result = TrainResult(config)
    start = time.perf_counter()
    with training_on(device, f"training at batch {config.batch_size}", "lower --batch-size or --img-size"):
        for epoch in range(config.epochs):
            t0 = time.perf_counter()
            row = {"epoch": epoch + 1, **_train_one_epoch(model, loader, opt, sched, config, epoch, device, progress)}
            if config.recalibrate_bn:
                recalibrate_batchnorm(model, train_set, batch_size=max(config.batch_size, 128), device=device)
            if test_set is not None:
                row["test_acc"] = evaluate(model, test_set, device=device)["accuracy"]
            row["seconds"] = time.perf_counter() - t0
            result.history.append(row)
            progress.message(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in row.items()))
    result.seconds = time.perf_counter() - start
    result.test_accuracy = result.history[-1].get("test_acc")
    model.eval()
    return result


def _train_one_epoch(model: nn.Module, loader: DataLoader, opt, sched, config: TrainConfig, epoch: int,
                     device: str, progress: Progress) -> dict:
    """One pass over every training sample; returns the epoch's mean loss and training accuracy."""
    model.train()
    cuda = is_cuda(device)  # on CUDA the sums stay on the GPU (no sync per step) and are checked once an epoch
    seen, correct, loss_sum = 0, 0, 0.0
    with progress.task(f"epoch {epoch + 1}/{config.epochs}", total=len(loader)) as task:
        for images, labels in loader:
            images, labels = images.to(device, non_blocking=cuda), labels.to(device, non_blocking=cuda)
            with autocast(device):
                logits = model(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
            if not cuda and not torch.isfinite(loss):
                _diverged(loss.item(), epoch, config)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(labels)
            if cuda:
                loss_sum = loss_sum + loss.detach().double() * len(labels)
                correct = correct + (logits.argmax(1) == labels).sum()
                task.update(1)
                continue
            loss_sum += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            task.update(1, loss=loss.item())
    loss_sum, correct = float(loss_sum), int(correct)
    if not math.isfinite(loss_sum):
        _diverged(loss_sum, epoch, config)
    return {"loss": loss_sum / seen, "train_acc": correct / seen}


def _diverged(loss: float, epoch: int, config: TrainConfig):
    raise ModelError(f"training diverged (loss {loss}) in epoch {epoch + 1}: lower --lr (now {config.lr})")


class EverySampleBatches(Sampler[list[int]]):
    """Batches that cover every sample once per pass (no drop_last), optionally shuffled.

    A last batch of a single sample joins the batch before it: BatchNorm cannot normalise over one value
    per channel in training mode, and dropping it would lose the sample.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool = False,
                 generator: torch.Generator | None = None) -> None:
        self.size, self.batch_size, self.shuffle, self.generator = size, batch_size, shuffle, generator

    def __iter__(self) -> Iterator[list[int]]:
        order = (torch.randperm(self.size, generator=self.generator) if self.shuffle
                 else torch.arange(self.size)).tolist()
        batches = [order[i:i + self.batch_size] for i in range(0, self.size, self.batch_size)]
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches[-2].extend(batches.pop())
        return iter(batches)

    def __len__(self) -> int:
        count = math.ceil(self.size / self.batch_size)
        return count - 1 if count > 1 and self.size % self.batch_size == 1 else count


def every_sample_loader(dataset: Dataset, batch_size: int, shuffle: bool = False,
                        generator: torch.Generator | None = None, device: str = "cpu") -> DataLoader:
    """A DataLoader over every sample of `dataset` each pass, never with a batch of one (see EverySampleBatches).

    For a CUDA `device` the batches are prepared off the training loop's critical path: in worker processes (the
    order is still the sampler's, drawn here) into pinned memory, ready for a non-blocking copy."""
    sampler = EverySampleBatches(len(dataset), batch_size, shuffle, generator)
    return DataLoader(dataset, batch_sampler=sampler, **loader_options(device))


def loader_options(device: str) -> dict:
    """DataLoader settings that keep a GPU fed (none on the CPU, where the loop is compute-bound)."""
    if not is_cuda(device):
        return {}
    import os

    workers = min(4, max(1, (os.cpu_count() or 2) // 2))
    return {"num_workers": workers, "pin_memory": True, "persistent_workers": True, "prefetch_factor": 4}


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, dataset: Dataset, batch_size: int = 128, device: str = "cpu") -> int:
    """Recompute every BatchNorm's running mean/var as the exact average over `dataset` (weights unchanged).

    Returns the number of BatchNorm layers updated. Dropout is disabled for the pass.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = model.training
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
        m.train()
    try:
        for images, _ in every_sample_loader(dataset, batch_size):
            model(images.to(device))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return len(norms)


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 256, device: str = "cpu") -> dict:
    """Top-1 accuracy and mean cross-entropy of `model` on `dataset` (eval mode)."""
    if len(dataset) == 0:
        raise ModelError("evaluation set is empty: check the data set and split")
    was_training = model.training
    model.eval().to(device)
    correct, loss_sum, n = 0, 0.0, 0
    for images, labels in DataLoader(dataset, batch_size=batch_size):
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        n += len(labels)
    model.train(was_training)
    return {"accuracy": correct / n, "loss": loss_sum / n, "samples": n}
