"""`defend_model`: insert a defense at a cut and fine-tune the model with its objective.

The loss is the task's cross-entropy plus the defense's term: CEM's within-class information bound
(minimised, so the attacker's conditional entropy H(x | z) rises),
the adversarial reconstruction loss of a surrogate decoder trained in alternation (maximised, weight
beta), PATROL's block-wise Lipschitz constants (minimised, weight alpha) or the masks' L1 norm (pruning:
after training the weakest channels are removed and the model fine-tuned one more epoch).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgesplit.defenses.apply import apply_defense, defended_cut
from edgesplit.defenses.losses import SurrogateDecoder, information_bound, lipschitz_ratios
from edgesplit.defenses.registry import get_defense
from edgesplit.errors import DefenseError
from edgesplit.models import distributed
from edgesplit.models.device import autocast, is_cuda, training_on
from edgesplit.models.training import every_sample_loader, loader_options
from edgesplit.progress import Progress, resolve


@dataclass(frozen=True)
class DefendConfig:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or not self.lr > 0:
            raise DefenseError("defend needs epochs >= 1, batch_size >= 2 and lr > 0")

    def to_dict(self) -> dict:
        return asdict(self)


def defend_model(model: nn.Module, cut: str, name: str, params: dict | None, train_set, test_set,
                 config: DefendConfig | None = None, progress: Progress | None = None,
                 device: str = "cpu") -> tuple[nn.Module, dict]:
    """Return (the defended, fine-tuned model with its spec updated, a report of what training did).

    `device` cpu or cuda (`models.device`: bf16 autocast for the forward passes, every loss and defense term in
    fp32). Under torch.distributed each process fine-tunes on its DistributedSampler share of every epoch and
    the gradients are all-reduced; all processes end with the same weights. The model returned is on the CPU."""
    from edgesplit.models import ModelSpec
    from edgesplit.models.blocks import block_paths
    from edgesplit.models.training import evaluate

    config, progress = config or DefendConfig(), resolve(progress)
    spec = model.edgesplit_spec
    if "defense" in spec.kwargs:
        raise DefenseError("this model already carries a defense: defend the undefended checkpoint instead")
    defense = get_defense(name)
    start = time.perf_counter()
    before = evaluate(model, test_set, device=device)["accuracy"]
    model.cpu()  # the defense is inserted on the CPU, then the whole model moves
    head_blocks = [p for p in block_paths(model) if _before_or_at(model, p, cut)]
    torch.manual_seed(config.seed)
    apply_defense(model, cut, name, params, spec.in_chans, spec.img_size)
    params = model.edgesplit_defense["params"]
    with training_on(device, f"fine-tuning the defense at batch {config.batch_size}",
                     "lower --batch-size or use --device cpu"):
        history = _fine_tune(model.to(device), cut, name, params, head_blocks, train_set, config, config.epochs,
                             progress, device)
        if name == "pruning":
            model, kept = _prune(model.cpu(), spec, cut, params)
            params = {**params, "keep": kept}
            history += _fine_tune(model.to(device), cut, "none", params, [], train_set, config, 1, progress, device)
    model.edgesplit_spec = ModelSpec(spec.name, spec.num_classes, spec.in_chans, spec.img_size,
                                     {**spec.kwargs, "defense": {"cut": cut, "name": name, "params": params}})
    after = evaluate(model, test_set, device=device)["accuracy"]
    model.cpu()
    report = {"defense": name, "params": params, "description": defense.description, "source": defense.source,
              "cut": cut, "defended_cut": defended_cut(cut), "config": config.to_dict(),
              "test_accuracy_before": before, "test_accuracy": after, "history": history,
              "seconds": time.perf_counter() - start}
    return model.eval(), report


def _before_or_at(model: nn.Module, path: str, cut: str) -> bool:
    order = [n for n, _ in model.named_modules()]
    return path in order and cut in order and order.index(path) <= order.index(cut) and not path.startswith(cut + ".")


def _fine_tune(model, cut, name, params, head_blocks, train_set, config, epochs, progress, device) -> list[dict]:
    modules = dict(model.named_modules())
    captured: dict[str, torch.Tensor] = {}
    hooks = [modules[f"{cut}.defense"].register_forward_hook(lambda _m, _i, out: captured.__setitem__("z", out))]
    if name == "lipschitz":
        for i, path in enumerate(head_blocks):
            target = modules[f"{path}.layer"] if path == cut else modules[path]
            hooks.append(target.register_forward_hook(
                lambda _m, _i, out, i=i: captured.setdefault("blocks", {}).__setitem__(i, out)))
    gen = torch.Generator().manual_seed(config.seed)
    loader = _loader(train_set, config, gen, device)
    cuda = is_cuda(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    decoder = decoder_opt = None
    history = []
    try:
        for epoch in range(epochs):
            model.train()
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
            sums: dict[str, torch.Tensor] = {}  # summed on the device: no host sync inside a step
            seen = 0
            with progress.task(f"defend ({name}) epoch {epoch + 1}/{epochs}", total=len(loader.dataset)) as task:
                for x, y in loader:
                    x, y = x.to(device, non_blocking=cuda), y.to(device, non_blocking=cuda)
                    captured.clear()
                    # the Lipschitz term divides feature differences by a small perturbation: fp32 passes, as
                    # bf16 rounding would add to every difference (and bias the penalty up)
                    precise = contextlib.nullcontext() if name == "lipschitz" else autocast(device)
                    with precise:
                        logits = model(x)
                    loss = F.cross_entropy(logits.float(), y)
                    terms = {"task": loss.detach()}
                    z = captured["z"].float()
                    if name == "cem":
                        bound = information_bound(z, y, params["noise_std"], params["var_threshold"],
                                                  params["log_entropy"])
                        loss = loss + params["lambda"] * bound  # lower I(x; z | y): higher H(x | z)
                        terms["information_bound"] = bound.detach()
                    elif name == "adversarial":
                        if decoder is None:
                            decoder = SurrogateDecoder(tuple(z.shape[1:]), tuple(x.shape[1:])).to(device)
                            decoder_opt = torch.optim.Adam(decoder.parameters(), lr=params["decoder_lr"])
                        rec_loss = F.mse_loss(decoder(z.detach()), x)  # the attacker's step
                        decoder_opt.zero_grad(set_to_none=True)
                        rec_loss.backward()
                        distributed.average_gradients(decoder)
                        decoder_opt.step()
                        adv = F.mse_loss(decoder(z), x)  # the head's step: make inversion hard
                        loss = loss - params["beta"] * adv
                        terms["reconstruction_mse"] = adv.detach()
                    elif name == "lipschitz":
                        clean = [captured["blocks"][i].float() for i in range(len(head_blocks))]
                        captured.pop("blocks")
                        delta = torch.randn_like(x) * params["delta_std"]
                        model(x + delta)  # fp32, as the clean pass above
                        noisy = [captured["blocks"][i].float() for i in range(len(head_blocks))]
                        ks = lipschitz_ratios(clean, noisy, delta)
                        loss = loss + params["alpha"] * ks.sum()
                        terms["lipschitz"] = ks.sum().detach()
                    elif name == "pruning" and "keep" not in params:
                        mask = modules[f"{cut}.defense"].mask
                        l1 = mask.abs().sum()
                        loss = loss + params["l1"] * l1
                        terms["mask_l1"] = l1.detach()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    distributed.average_gradients(model)  # the all-reduce DDP does, after the several passes
                    opt.step()
                    seen += len(x)
                    for k, v in terms.items():
                        sums[k] = sums.get(k, 0.0) + v.double() * len(x)  # float64, as the sum of floats was
                    task.update(len(x), loss=loss.item())
            distributed.sync_module(model)  # BatchNorm statistics: rank 0's, on every rank
            # every rank's share (one process: its own)
            *totals, seen = distributed.total(*(v.item() for v in sums.values()), seen)
            history.append({"epoch": len(history) + 1, **{k: v / seen for k, v in zip(sums, totals, strict=True)}})
    finally:
        for h in hooks:
            h.remove()
    return history


def _loader(train_set, config: DefendConfig, gen, device: str):
    """Every training image once an epoch (no image dropped); under torch.distributed each process takes its
    DistributedSampler share (seeded like the one-process order, reshuffled each epoch)."""
    if not distributed.active():
        return every_sample_loader(train_set, config.batch_size, shuffle=True, generator=gen, device=device)
    from torch.utils.data import DataLoader, DistributedSampler

    sampler = DistributedSampler(train_set, shuffle=True, seed=config.seed)
    share = max(2, config.batch_size // distributed.world_size())  # the global batch stays the one-process one
    return DataLoader(train_set, batch_size=share, sampler=sampler, drop_last=True, **loader_options(device))


def _prune(model: nn.Module, spec, cut: str, params: dict) -> tuple[nn.Module, list[int]]:
    """Keep the `keep_ratio` channels with the largest |mask|; rebuild the model pruned, weights carried over."""
    from edgesplit.models import ModelSpec
    from edgesplit.models.registry import build

    mask = dict(model.named_modules())[f"{cut}.defense"].mask.detach()
    n = max(1, round(params["keep_ratio"] * len(mask)))
    keep = sorted(torch.topk(mask.abs(), n).indices.tolist())
    pruned = build(ModelSpec(spec.name, spec.num_classes, spec.in_chans, spec.img_size,
                             {**spec.kwargs, "defense": {"cut": cut, "name": "pruning",
                                                         "params": {**params, "keep": keep}}}))
    old, new = model.state_dict(), pruned.state_dict()
    index = torch.tensor(keep)
    for key, value in new.items():
        if key in old and old[key].shape == value.shape:
            new[key] = old[key]
        elif key in old and old[key].dim() >= 1 and old[key].shape[0] == len(mask) and value.shape[0] == n:
            new[key] = old[key][index]  # the sliced producer conv and its BatchNorm
        elif key.endswith("scale") and value.shape == (n,):
            new[key] = mask[index]
    pruned.load_state_dict(new)
    return pruned, keep
