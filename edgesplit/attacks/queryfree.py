"""Query-free attack (He et al., ACSAC 2019): no device queries and no head weights. The attacker (e.g. the
server) holds the tail and its own labelled data, trains a shadow head of the same architecture so that
tail(shadow(x)) classifies correctly — which pulls the shadow's features towards the target's — then trains a
decoder on the shadow's features and applies it to what the device sends."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from edgesplit.errors import AttackError
from edgesplit.progress import Progress, resolve


def train_shadow_head(shadow_head: torch.nn.Module, tail: torch.nn.Module, images: np.ndarray, labels: np.ndarray,
                      epochs: int = 10, lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                      progress: Progress | None = None) -> dict:
    """Fit `shadow_head` through the frozen `tail` with cross-entropy; returns training figures."""
    if len(images) != len(labels) or len(images) < 32:
        raise AttackError(f"the shadow head needs at least 32 labelled attacker images (got {len(images)})")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    tail = tail.eval()
    for p in tail.parameters():
        p.requires_grad_(False)
    x, y = torch.from_numpy(images.astype(np.float32)), torch.from_numpy(np.asarray(labels, np.int64))
    opt = torch.optim.Adam(shadow_head.parameters(), lr=lr)
    history = []
    with resolve(progress).task("training the shadow head", total=epochs) as task:
        for _ in range(epochs):
            shadow_head.train()
            perm, correct = torch.randperm(len(x), generator=gen), 0
            for i in range(0, len(x), batch_size):
                idx = perm[i: i + batch_size]
                if len(idx) < 2:
                    continue
                logits = tail(shadow_head(x[idx]))
                loss = F.cross_entropy(logits, y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                correct += (logits.argmax(1) == y[idx]).sum().item()
            history.append({"loss": loss.item(), "train_acc_through_tail": correct / len(x)})
            task.update(1, acc=history[-1]["train_acc_through_tail"])
    shadow_head.eval()
    return {"epochs": epochs, "history": history}


@torch.no_grad()
def shadow_features(shadow_head: torch.nn.Module, images: np.ndarray, batch: int = 256) -> np.ndarray:
    x = torch.from_numpy(images.astype(np.float32))
    return torch.cat([shadow_head(x[i: i + batch]) for i in range(0, len(x), batch)]).numpy()
