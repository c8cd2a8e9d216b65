"""Training a decoder on (features, images) pairs until it converges: seeded, early-stopped on a validation
slice, with progress.

The default recipe is sized for attackers that hold a few hundred samples and two CPU cores, because an
under-trained attacker makes a cut look private when it is not: small batches (about 40 steps an epoch,
`batch_size=0`), Adam 1e-3 in cosine cycles of 15 epochs restarted (SGDR) while a cycle still improves the
best validation loss by 0.5 dB; it ends then (converged), at the `epochs` ceiling or at the optional
`budget_s` time budget, and the record says which. A single early-stopped run was 2-3 dB short: a restart
from the best weights kept improving, on every cut of the digits.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgesplit.attacks.decoders import create_decoder
from edgesplit.attacks.inverter import Discriminator, FeatureNorm, Inverter, schedules
from edgesplit.errors import AttackError
from edgesplit.models import distributed
from edgesplit.models.device import Feeder, autocast, local_cuda_device, training_on
from edgesplit.progress import Progress, resolve

MIN_SAMPLES = 32
REFIT_BELOW = 16  # a validation slice smaller than this: retrain on all samples for the chosen epochs (_refit)
SCHEDULES = ("restarts", "cosine", "plateau", "exponential", "constant")
STEPS_PER_EPOCH = 40  # batch_size=0: the batch that gives about this many optimiser steps an epoch
MIN_BATCH, MAX_BATCH = 8, 64
WARM_PATIENCE_MIN = 3
MIN_IMPROVEMENT = 1e-3  # a validation loss must fall by this share (0.004 dB) to count as better
# schedule="restarts": another cosine cycle only while the last one cut the best validation loss by 0.5 dB (11 %);
# the gains shrink geometrically (digits: +2.8, +1.3, +0.8, +0.7, +0.6, +0.5 dB per 15-epoch cycle at the first cut)
MIN_CYCLE_GAIN = 1 - 10 ** (-0.5 / 10)
__all__ = ["DecoderConfig", "Discriminator", "FeatureNorm", "Inverter", "TrainedDecoder", "evaluate_mse",
           "reconstruct", "train_decoder"]


@dataclass(frozen=True)
class DecoderConfig:
    decoder: str = "deconv"
    epochs: int = 150  # a ceiling: training stops when the validation loss stops improving
    batch_size: int = 0  # 0: about STEPS_PER_EPOCH steps an epoch, between MIN_BATCH and MAX_BATCH
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int = 6  # schedules other than restarts: epochs without a better validation loss before stopping
    budget_s: float = 0.0  # > 0: stop after the epoch that passes this many seconds (not converged)
    noise_mean: float = 0.0  # optional Gaussian feature noise (the reconstruction seed's option)
    noise_std: float = 0.0
    noise_at_test: bool = False
    adversarial_weight: float = 0.0  # > 0: GAN-prior decoder (CEM's GAN-based inversion): MSE + w * adversarial
    seed: int = 0
    decoder_kwargs: dict = field(default_factory=dict)  # e.g. {"depth": "deep"}, {"stem": True, "output": "tanh"}
    betas: tuple[float, float] = (0.9, 0.999)  # Adam
    amsgrad: bool = False
    schedule: str = "restarts"  # restarts (cosine cycles of cycle_epochs, restarted while a cycle still helps) |
    #                             plateau (x lr_gamma on a stalled validation loss) | cosine (per step, to lr *
    #                             min_lr_ratio over the ceiling) | exponential (per epoch) | constant
    cycle_epochs: int = 15  # restarts: epochs per cosine cycle
    lr_gamma: float = 0.3  # plateau: factor on a stalled validation loss; exponential: factor per epoch
    min_lr_ratio: float = 0.01
    device: str = "cpu"  # cpu or cuda (cuda:N): where the decoder trains (models.device: bf16 autocast on CUDA)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 0 or not self.lr > 0 or self.patience < 1 or self.cycle_epochs < 1:
            raise AttackError("decoder training needs epochs >= 1, batch_size >= 0 (0: automatic), lr > 0, "
                              "patience >= 1 and cycle_epochs >= 1")
        if not 0 < self.val_fraction < 0.5 or self.noise_std < 0 or self.adversarial_weight < 0:
            raise AttackError("val_fraction must be in (0, 0.5), noise_std >= 0 and adversarial_weight >= 0")
        if self.budget_s < 0:
            raise AttackError(f"budget_s must be >= 0 seconds (0: no time budget), got {self.budget_s}")
        if self.schedule not in SCHEDULES:
            raise AttackError(f"unknown schedule {self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        if not 0 < self.lr_gamma <= 1 or not 0 <= self.min_lr_ratio <= 1:
            raise AttackError("lr_gamma must be in (0, 1] and min_lr_ratio in [0, 1]")
        if self.device.split(":", 1)[0] not in ("cpu", "cuda"):
            raise AttackError(f"decoder device {self.device!r} is neither cpu nor cuda (resolve 'auto' first: "
                              f"edgesplit.models.device.resolve_device)")

    def to_dict(self) -> dict:
        return asdict(self)

    def batch_for(self, n_train: int) -> int:
        """The batch size used for `n_train` training samples."""
        if self.batch_size:
            return self.batch_size
        return max(MIN_BATCH, min(MAX_BATCH, n_train // STEPS_PER_EPOCH))


@dataclass
class TrainedDecoder:
    model: Inverter
    config: DecoderConfig
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    images_per_second: float = 0.0
    params: int = 0
    batch_size: int = 0
    samples: int = 0  # training samples (the validation slice excluded)
    stopped_by: str = ""  # patience (converged) | epochs (ceiling reached) | budget (time budget spent)
    warm_start: str | None = None  # what the weights started from, when not a fresh initialisation
    start_val_mse: float | None = None  # a warm start's validation loss before fine-tuning (epoch 0)
    refit_samples: int = 0  # > 0: the returned weights were retrained on this many (all) samples for best_epoch

    @property
    def converged(self) -> bool:
        return self.stopped_by == "patience"

    def summary(self) -> dict:
        best = (self.history[self.best_epoch - 1] if self.history and self.best_epoch
                else {"val_mse": self.start_val_mse})  # best_epoch 0: the warm start itself stayed best
        last = self.history[-1] if self.history else {}
        return {"config": self.config.to_dict(), "best_epoch": self.best_epoch, "epochs_run": len(self.history),
                "converged": self.converged, "stopped_by": self.stopped_by, "batch_size": self.batch_size,
                "train_samples": self.samples, "warm_start": self.warm_start, "refit_samples": self.refit_samples,
                "seconds": self.seconds, "images_per_second": self.images_per_second, "params": self.params,
                "final_train_mse": last.get("train_mse"), "final_val_mse": best.get("val_mse"),
                "best_val_mse": best.get("val_mse")}


def _noisy(z: torch.Tensor, config: DecoderConfig, generator: torch.Generator | None = None,
           rows: int | None = None) -> torch.Tensor:
    """z plus the config's Gaussian noise, drawn on the CPU (the same draws on every device). `rows`: the global
    batch `z` is this rank's share of (the draw covers it all, so every rank's generator stays in step)."""
    if config.noise_std == 0 and config.noise_mean == 0:
        return z
    noise = torch.randn((rows or len(z), *z.shape[1:]), generator=generator) * config.noise_std + config.noise_mean
    noise = distributed.shard(noise) if rows else noise
    if z.device.type != "cuda":
        return z + noise
    return z + noise.pin_memory().to(z.device, non_blocking=True)  # a copy overlaps only from pinned memory


def train_decoder(features: np.ndarray, images: np.ndarray, config: DecoderConfig | None = None,
                  progress: Progress | None = None, init: TrainedDecoder | None = None,
                  fraction: float = 1.0) -> TrainedDecoder:
    """Train an inverter on float features (already dequantized) paired row by row with images in [0, 1].

    `init`: a decoder of the same family and shapes to start from (e.g. the one trained on the FP32 wire of
    the same cut); it is fine-tuned on these features to convergence like a fresh one. `fraction` < 1 trains
    on that share of the training rows only (the validation slice stays the same): a learning-curve point.
    """
    config = config or DecoderConfig()
    if len(features) != len(images):
        raise AttackError(f"{len(features)} feature rows but {len(images)} images: pair them by sample id first")
    if len(features) < MIN_SAMPLES:
        raise AttackError(f"only {len(features)} attacker samples: a decoder needs at least {MIN_SAMPLES} "
                          f"(emit more of the attack split, drop --limit)")
    if not 0 < fraction <= 1:
        raise AttackError(f"fraction must be in (0, 1], got {fraction}")
    if not np.isfinite(features).all():
        raise AttackError("the features contain NaN or Inf: re-emit them from a verified bundle")
    device = local_cuda_device(config.device)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    z, x = torch.from_numpy(np.ascontiguousarray(features, np.float32)), torch.from_numpy(images.astype(np.float32))
    order = torch.randperm(len(z), generator=gen)
    n_val = max(1, int(len(z) * config.val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    train_idx = train_idx[:max(2, round(len(train_idx) * fraction))]
    model = _inverter(config, z, x, train_idx, init, device)
    batch = config.batch_for(len(train_idx))
    with training_on(device, f"training decoder {config.decoder} at batch {batch}",
                     "lower the decoder batch (--batch-size; 0 picks about 40 steps an epoch) or use --device cpu"):
        feeder = Feeder(z, x, device=device)
        result, seen, start = _train(model, feeder, train_idx, val_idx, batch, config, init, gen, resolve(progress))
        spent = distributed.agree(time.perf_counter() - start)  # rank 0's clock decides for every rank
        refit_cost = (spent / len(result.history) * result.best_epoch * len(z) / len(train_idx)
                      if result.history else 0)
        within_budget = not config.budget_s or spent + refit_cost <= config.budget_s
        if n_val < REFIT_BELOW and fraction == 1 and result.best_epoch > 0 and within_budget:
            seen += _refit(result, feeder, torch.cat([train_idx, val_idx]), init, gen, resolve(progress), device)
    result.seconds = time.perf_counter() - start
    result.images_per_second = seen / result.seconds if result.seconds > 0 else 0.0
    result.model.eval()
    return result


def _inverter(config: DecoderConfig, z, x, rows, init: TrainedDecoder | None, device: str) -> Inverter:
    """A fresh inverter normalised by the features of `rows` (or `init`'s decoder weights), built on the CPU
    (the same initial weights on every device) and moved to `device`."""
    model = Inverter(FeatureNorm(z[rows]), create_decoder(config.decoder, tuple(z.shape[1:]), tuple(x.shape[1:]),
                                                          **config.decoder_kwargs))
    if init is not None:
        try:
            model.decoder.load_state_dict(init.model.decoder.state_dict())
        except RuntimeError as exc:
            raise AttackError(f"cannot start from that decoder: it does not match {config.decoder} for these "
                              f"shapes ({str(exc).splitlines()[0]})") from None
    return model.to(device)


def _optimiser(model, config: DecoderConfig, rows: int, batch: int):
    """(Adam, per-step scheduler, per-epoch scheduler) for training on `rows` samples in batches of `batch`."""
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                           betas=tuple(config.betas), amsgrad=config.amsgrad)
    steps_per_epoch = math.ceil(rows / batch)
    return (opt, *schedules(opt, config, config.epochs * steps_per_epoch, steps_per_epoch))


def _train(model, feeder: Feeder, train_idx, val_idx, batch, config: DecoderConfig, init, gen,
           progress) -> tuple[TrainedDecoder, int, float]:
    """The held-out run: epochs until converged, the ceiling or the budget; the best weights kept. Returns the
    record (finished by the caller), the images seen and the start time."""
    opt, step_sched, epoch_sched = _optimiser(model, config, len(train_idx), batch)
    result = TrainedDecoder(model, config, params=sum(p.numel() for p in model.parameters()), batch_size=batch,
                            samples=len(train_idx), warm_start=init.config.decoder if init is not None else None)
    stepper = _Stepper(model, opt, step_sched, config, feeder.tensors[1].shape[1], gen, feeder.device)
    best, best_state, stale, start = float("inf"), None, 0, time.perf_counter()
    cycle_start = float("inf")
    z_val, x_val = feeder.rows(val_idx)
    if init is not None:  # the starting point is a candidate too: fine-tuning never ends worse than it began
        best = cycle_start = result.start_val_mse = distributed.agree(evaluate_mse(model, z_val, x_val))
        best_state = copy.deepcopy(model.state_dict())
    # A warm start already sits near a minimum: it is fine-tuned, so half the patience tells convergence.
    patience = max(WARM_PATIENCE_MIN, config.patience // 2) if init is not None else config.patience
    result.stopped_by = "epochs"
    with progress.task(f"decoder {config.decoder}", total=config.epochs) as task:
        for epoch in range(config.epochs):
            train_mse = stepper.epoch(feeder, train_idx, batch)
            distributed.sync_module(model)  # every rank scores (and keeps) rank 0's weights and statistics
            val = distributed.agree(evaluate_mse(model, z_val, x_val))
            result.history.append({"epoch": epoch + 1, "train_mse": train_mse, "val_mse": val,
                                   "lr": opt.param_groups[0]["lr"]})
            if isinstance(epoch_sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                epoch_sched.step(val)
            elif epoch_sched is not None:
                epoch_sched.step()
            if val < best * (1 - MIN_IMPROVEMENT):
                best, best_state, stale, result.best_epoch = val, copy.deepcopy(model.state_dict()), 0, epoch + 1
            else:
                stale += 1
            task.update(1, val_mse=val)
            if config.schedule == "restarts":
                if (epoch + 1) % config.cycle_epochs == 0:  # a cycle ends: another only if this one still helped
                    if best > cycle_start * (1 - MIN_CYCLE_GAIN):
                        result.stopped_by = "patience"
                        break
                    cycle_start = best
            elif stale >= patience:
                result.stopped_by = "patience"
                break
            if config.budget_s and distributed.agree(time.perf_counter() - start) > config.budget_s:
                result.stopped_by = "budget"
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result, stepper.seen, start


class _Stepper:
    """One decoder's optimiser steps (and the GAN prior's discriminator, when the config has one).

    Under torch.distributed each global batch is shared out among the ranks (`distributed.shard`) and the
    gradients all-reduced by DistributedDataParallel, so N processes take the steps one process takes."""

    def __init__(self, model, opt, step_sched, config: DecoderConfig, channels: int, gen, device) -> None:
        self.model, self.opt, self.step_sched, self.config, self.gen = model, opt, step_sched, config, gen
        self.device = device
        self.net = distributed.wrap(model, str(device))
        self.seen = 0
        self.disc = Discriminator(channels).to(device) if config.adversarial_weight > 0 else None
        if self.disc is not None:
            self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=config.lr, betas=(0.5, 0.999))

    def epoch(self, feeder: Feeder, rows: torch.Tensor, batch: int) -> float:
        """One pass over `rows` in a fresh order; the mean training MSE (over every rank's samples)."""
        self.model.train()
        perm = rows[torch.randperm(len(rows), generator=self.gen)]
        total, count = torch.zeros((), dtype=torch.float64, device=self.device), 0  # summed on the device: no sync
        smallest = 2 * distributed.world_size()  # BatchNorm needs two samples (on each rank)
        for i in range(0, len(perm), batch):
            idx = perm[i: i + batch]
            if len(idx) < smallest:
                continue
            z, target = feeder.rows(distributed.shard(idx))
            with autocast(self.device):
                recon = self.net(_noisy(z, self.config, self.gen, rows=len(idx)))
            mse = F.mse_loss(recon.float(), target)  # fp32 loss (recon.float() is recon itself on the CPU)
            loss = mse if self.disc is None else mse + self._adversarial(target, recon)
            if distributed.active():  # DDP averages the ranks' gradients: weigh each share by its size, so an
                loss = loss * (len(target) * distributed.world_size() / len(idx))  # uneven split is still exact
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if self.step_sched is not None:
                self.step_sched.step()
            self.seen += len(idx)
            total, count = total + mse.detach().double() * len(target), count + len(target)
        total_all, count_all = distributed.total(total.item(), count)
        return total_all / max(1, count_all)

    def _adversarial(self, target, recon):
        """Train the discriminator a step; the decoder's loss for making reconstructions it calls real."""
        with autocast(self.device):
            real, fake = self.disc(target), self.disc(recon.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real.float(), torch.ones_like(real, dtype=torch.float32))
                  + F.binary_cross_entropy_with_logits(fake.float(), torch.zeros_like(fake, dtype=torch.float32)))
        self.disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        distributed.average_gradients(self.disc)
        self.disc_opt.step()
        with autocast(self.device):
            judged = self.disc(recon)
        return self.config.adversarial_weight * F.binary_cross_entropy_with_logits(
            judged.float(), torch.ones_like(judged, dtype=torch.float32))


def _refit(result: TrainedDecoder, feeder: Feeder, rows, init, gen, progress, device) -> int:
    """Retrain on every attacker sample, validation slice included, for the epochs the held-out run chose.

    With few samples the validation slice is both a real share of the attacker's data (10 % of 40 faces)
    and too small to pick a checkpoint reliably; an attacker who knows how long to train uses them all.
    The validation loss of the refit model is no longer held out, so `final_val_mse` keeps the first run's.
    """
    config = result.config
    z, x = feeder.host
    model = _inverter(config, z, x, rows, init, device)
    batch = config.batch_for(len(rows))
    opt, step_sched, epoch_sched = _optimiser(model, config, len(rows), batch)
    stepper = _Stepper(model, opt, step_sched, config, x.shape[1], gen, feeder.device)
    with progress.task(f"decoder {config.decoder} (refit on all {len(rows)})", total=result.best_epoch) as task:
        for epoch in range(result.best_epoch):
            stepper.epoch(feeder, rows, batch)
            if isinstance(epoch_sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                epoch_sched.step(result.history[epoch]["val_mse"])  # the held-out run's trajectory
            elif epoch_sched is not None:
                epoch_sched.step()
            task.update(1)
    distributed.sync_module(model)
    result.model, result.refit_samples = model, len(rows)
    return stepper.seen


@torch.no_grad()
def reconstruct(model: nn.Module, features: np.ndarray, config: DecoderConfig | None = None,
                batch: int = 256) -> torch.Tensor:
    """Reconstructions in [0, 1] for float features (test-time noise added when the config asks for it)."""
    model.eval()
    device = next(model.parameters()).device
    z = torch.from_numpy(np.ascontiguousarray(features, np.float32))
    if config is not None and config.noise_at_test:
        z = _noisy(z, config, torch.Generator().manual_seed(config.seed + 1))
    return torch.cat([model(z[i: i + batch].to(device)).float().cpu() for i in range(0, len(z), batch)])


@torch.no_grad()
def evaluate_mse(model: nn.Module, z: torch.Tensor, x: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    device = next(model.parameters()).device
    total = sum(F.mse_loss(model(z[i: i + batch].to(device)), x[i: i + batch].to(device), reduction="sum").item()
                for i in range(0, len(z), batch))
    return total / x.numel()
