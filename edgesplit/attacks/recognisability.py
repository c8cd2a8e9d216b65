"""Would someone be recognised? Two rates beside PSNR/SSIM, because a PSNR bound is not a privacy bound
(at 19 dB handwritten digits are still legible).

Re-identification (label-free): every held-out reconstruction is compared with all N held-out originals,
and it counts as re-identified at rank k when fewer than k other originals are more similar to it than its
own (ties go to the attacker). Two similarities: SSIM in pixel space, and cosine in the space of an encoder
independent of the target: principal components of the attacker's own images (eigenfaces), never the
target's head. Chance is k / N.

Recognition (labelled data): an evaluation classifier of an architecture unlike any target model (a small
residual network with BatchNorm and SiLU, trained with random shifts on the attacker's split) labels the
reconstructions; its accuracy on the originals is the upper bound, on the floor (the attacker's mean
image) the no-leakage level. Model-inversion toolboxes score attacks this way. It trains on `device` (bf16
autocast on CUDA, the loss in fp32: `edgesplit.models.device`), stays there, and labels images in fp32.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgesplit.attacks.metrics import SIGMA, _filter, _gaussian, window_for
from edgesplit.errors import AttackError
from edgesplit.models.device import Feeder, autocast, local_cuda_device, resolve_device, training_on

TOP_K = (1, 5)
PCA_VARIANCE = 0.95  # components kept: enough to explain this share of the attacker images' variance
EVALUATOR_EPOCHS = 20


# --- re-identification -----------------------------------------------------------------------------


class Eigenspace:
    """PCA of the attacker's images: `embed` maps images to their coordinates on the leading components."""

    def __init__(self, images: np.ndarray, variance: float = PCA_VARIANCE) -> None:
        flat = torch.from_numpy(np.ascontiguousarray(images, np.float32)).double().flatten(1)
        if len(flat) < 2:
            raise AttackError("the re-identification encoder needs at least 2 attacker images")
        self.mean = flat.mean(0, keepdim=True)
        _, s, vh = torch.linalg.svd(flat - self.mean, full_matrices=False)
        share = (s ** 2).cumsum(0) / (s ** 2).sum().clamp_min(1e-12)
        self.components = int((share < variance).sum().item()) + 1
        self.basis = vh[: self.components].T

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return (images.double().flatten(1) - self.mean) @ self.basis


def ssim_matrix(queries: torch.Tensor, gallery: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """S[i, j] = SSIM(queries[i], gallery[j]) (data range 1, the window of `metrics.ssim`), for all pairs.

    Local means and variances are filtered once per image. The cross term of every pair at every window
    position is a weighted inner product of two image patches, so all pairs come from one batched matrix
    product over positions (float32: a ranking needs no more). Equal to `metrics.ssim` per pair within 1e-4.
    """
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    window = window_for(*gallery.shape[-2:])
    g = _gaussian(window, SIGMA).float()
    q, r = queries.float(), gallery.float()
    mq, mr = _filter(q, g).flatten(2), _filter(r, g).flatten(2)  # N x C x P
    vq, vr = _filter(q * q, g).flatten(2) - mq * mq, _filter(r * r, g).flatten(2) - mr * mr
    weights = torch.outer(g, g).flatten()  # the 2-D window, matching unfold's patch order

    def patches(x):  # N x C x K x P
        return F.unfold(x, window).view(len(x), x.shape[1], window * window, -1)

    pr = patches(r).permute(1, 3, 2, 0)  # C x P x K x N
    rows = []
    for start in range(0, len(q), chunk):
        pq = (patches(q[start: start + chunk]) * weights[:, None]).permute(1, 3, 0, 2)  # C x P x n x K
        cross = torch.matmul(pq, pr).permute(2, 3, 0, 1)  # n x N x C x P
        ma, va = mq[start: start + chunk, None], vq[start: start + chunk, None]
        cov = cross - ma * mr[None]
        value = ((2 * ma * mr[None] + c1) * (2 * cov + c2)) / ((ma * ma + mr[None] ** 2 + c1) * (va + vr[None] + c2))
        rows.append(value.flatten(2).mean(2).double())
    return torch.cat(rows)


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a.double(), dim=1, eps=1e-12) @ F.normalize(b.double(), dim=1, eps=1e-12).T


def top_k_rates(similarity: torch.Tensor, ks=TOP_K) -> dict:
    """Share of queries i whose own gallery item i is among the k most similar (ties go to the query)."""
    own = similarity.diagonal().unsqueeze(1)
    better = (similarity > own).sum(1)
    return {f"top{k}": float((better < k).double().mean()) for k in ks}


def reid_rates(attack_images: torch.Tensor, originals: torch.Tensor, encoder: Eigenspace) -> dict:
    """Top-1/top-5 re-identification of `originals` from `attack_images` (row i rebuilds original i), by SSIM
    and by encoder cosine; `top1`/`top5` are the better of the two."""
    if len(originals) < 2:
        raise AttackError("re-identification needs at least 2 held-out images")
    attack, orig = attack_images.double().clamp(0, 1), originals.double()
    if len(attack) == 1:  # one image for every query (the floor): one row of similarities serves all
        by_ssim = ssim_matrix(attack, orig).expand(len(orig), -1)
        attack = attack.expand_as(orig)
    else:
        by_ssim = ssim_matrix(attack, orig)
    out = {"ssim": top_k_rates(by_ssim),
           "encoder": top_k_rates(cosine_matrix(encoder.embed(attack), encoder.embed(orig)))}
    for k in TOP_K:
        out[f"top{k}"] = max(out["ssim"][f"top{k}"], out["encoder"][f"top{k}"])
    return out


def reid_context(originals: torch.Tensor, encoder: Eigenspace, floor_image: torch.Tensor) -> dict:
    """What a re-identification rate is read against: gallery size, chance (k / N) and the floor's rates."""
    n = len(originals)
    return {"gallery": n, "chance": {f"top{k}": min(1.0, k / n) for k in TOP_K},
            "floor": reid_rates(floor_image, originals, encoder),
            "encoder": {"what": "PCA of the attacker's images (eigenfaces), independent of the target",
                        "components": encoder.components, "variance": PCA_VARIANCE},
            "similarities": ["ssim (11x11 Gaussian, data range 1)", "cosine in the encoder's space"]}


# --- recognition -----------------------------------------------------------------------------------


class _Residual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if cin == cout and stride == 1 else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return F.silu(self.body(x) + self.skip(x))


class Evaluator(nn.Module):
    """The evaluation classifier: residual stages with BatchNorm and SiLU, global average pooling. No model
    in edgesplit's registry has this layout, so it never shares the target's features or blind spots."""

    def __init__(self, channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.SiLU(),
                                 _Residual(width, width, 2), _Residual(width, 2 * width, 2),
                                 _Residual(2 * width, 4 * width, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(4 * width, num_classes))

    def forward(self, x):
        return self.net(x)


def _shifted(x: torch.Tensor, gen: torch.Generator, pad: int) -> torch.Tensor:
    """The batch translated by a random offset of up to `pad` pixels (replicate padding)."""
    side = x.shape[-1]
    dx, dy = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=gen))
    return F.pad(x, (pad,) * 4, mode="replicate")[..., dy: dy + side, dx: dx + side]


def train_evaluator(images: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0,
                    epochs: int = EVALUATOR_EPOCHS, batch_size: int = 32,
                    device: str = "cpu") -> tuple[Evaluator, dict]:
    """Fit the evaluation classifier on the attacker's labelled images (Adam, cosine, random shifts) on `device`,
    where the returned classifier stays."""
    if len(images) < 2 or num_classes < 2:
        raise AttackError("the evaluation classifier needs at least 2 labelled images of 2 classes")
    device = resolve_device(device)  # 'cuda' without a GPU: one line
    on = local_cuda_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)  # order and shifts, drawn on the CPU: the same on every device
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32))
    y = torch.from_numpy(np.asarray(labels, np.int64))
    x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions (CPU; tensor cores on CUDA)
    model = Evaluator(x.shape[1], num_classes).to(memory_format=torch.channels_last).to(on)  # initialised on the CPU
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=5e-4)
    steps = epochs * -(-len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    pad = max(1, x.shape[-1] // 16)
    model.train()
    with training_on(on, f"training the evaluation classifier at batch {batch_size}", "use --device cpu"):
        feeder = Feeder(x, y, device=on)
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch_size):
                xb, yb = feeder.rows(perm[i: i + batch_size])
                with autocast(on):
                    logits = model(_shifted(xb, gen, pad))
                loss = F.cross_entropy(logits.float(), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        model.eval()
        return model, {"architecture": "residual CNN, BatchNorm + SiLU (not a target architecture)",
                       "trained_on": int(len(x)), "epochs": epochs, "classes": num_classes, "device": device,
                       "train_accuracy": accuracy(model, x, y)}


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 256) -> float:
    """Share of `images` (on the CPU) that `model` labels right, computed in fp32 on the model's device."""
    on = next(model.parameters()).device
    preds = torch.cat([model(images[i: i + batch].float().to(on)).argmax(1).cpu()
                       for i in range(0, len(images), batch)])
    return float((preds == labels).double().mean())


def recognition(reconstructions: torch.Tensor, originals: torch.Tensor, labels: np.ndarray, evaluator: Evaluator,
                floor_image: torch.Tensor, info: dict) -> dict:
    """The evaluator's accuracy on reconstructions, on the originals (upper bound) and on the floor."""
    y = torch.from_numpy(np.asarray(labels, np.int64))
    counts = np.bincount(np.asarray(labels, np.int64))
    return {"evaluator": info, "chance": float(counts.max() / counts.sum()),
            "reconstruction": accuracy(evaluator, reconstructions.clamp(0, 1), y),
            "originals": accuracy(evaluator, originals, y),
            "floor": accuracy(evaluator, floor_image.expand_as(originals), y)}
