"""Query-free attack (He et al., ACSAC 2019): no device queries and no head weights. The attacker (e.g. the
server) holds the tail and its own labelled data, trains a shadow head of the same architecture so that
tail(shadow(x)) classifies correctly — which pulls the shadow's features towards the target's — then trains a
decoder on the shadow's features and applies it to what the device sends.

The shadow head trains on `device` (bf16 autocast on CUDA, the loss in fp32: `edgesplit.models.device`), and
its features are computed there in fp32; both modules are left where they were."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from edgesplit.errors import AttackError
from edgesplit.models.device import (
    Feeder,
    autocast,
    local_cuda_device,
    modules_on,
    resolve_device,
    training_on,
)
from edgesplit.progress import Progress, resolve


def train_shadow_head(shadow_head: torch.nn.Module, tail: torch.nn.Module, images: np.ndarray, labels: np.ndarray,
                      epochs: int = 10, lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                      progress: Progress | None = None, device: str = "cpu") -> dict:
    """Fit `shadow_head` through the frozen `tail` with cross-entropy on `device`; returns training figures."""
    if len(images) != len(labels) or len(images) < 32:
        raise AttackError(f"the shadow head needs at least 32 labelled attacker images (got {len(images)})")
    device = resolve_device(device)  # 'cuda' without a GPU: one line
    on = local_cuda_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)  # the order, drawn on the CPU: the same on every device
    tail = tail.eval()
    for p in tail.parameters():
        p.requires_grad_(False)
    x, y = torch.from_numpy(images.astype(np.float32)), torch.from_numpy(np.asarray(labels, np.int64))
    history = []
    with (resolve(progress).task("training the shadow head", total=epochs) as task,
          modules_on(on, shadow_head, tail),
          training_on(on, f"training the shadow head at batch {batch_size}", "use --device cpu")):
        opt = torch.optim.Adam(shadow_head.parameters(), lr=lr)
        feeder = Feeder(x, y, device=on)
        for _ in range(epochs):
            shadow_head.train()
            perm = torch.randperm(len(x), generator=gen)
            correct = torch.zeros((), dtype=torch.int64, device=on)  # counted on the device: one sync an epoch
            for i in range(0, len(x), batch_size):
                idx = perm[i: i + batch_size]
                if len(idx) < 2:
                    continue
                xb, yb = feeder.rows(idx)
                with autocast(on):
                    logits = tail(shadow_head(xb))
                loss = F.cross_entropy(logits.float(), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                correct += (logits.argmax(1) == yb).sum()
            history.append({"loss": loss.item(), "train_acc_through_tail": int(correct) / len(x)})
            task.update(1, acc=history[-1]["train_acc_through_tail"])
    shadow_head.eval()
    return {"epochs": epochs, "history": history, "device": device}


@torch.no_grad()
def shadow_features(shadow_head: torch.nn.Module, images: np.ndarray, batch: int = 256,
                    device: str = "cpu") -> np.ndarray:
    """The shadow head's features of `images`, computed on `device` in fp32."""
    on = local_cuda_device(resolve_device(device))
    x = torch.from_numpy(images.astype(np.float32))
    with modules_on(on, shadow_head):
        return torch.cat([shadow_head(x[i: i + batch].to(on)).cpu() for i in range(0, len(x), batch)]).numpy()
