"""White-box inversion (regularised maximum likelihood, He et al. 2019): the attacker holds the head's weights
and optimises an input so the head reproduces the observed features, with a total-variation prior.

On CUDA (`WhiteboxConfig.device`) the inversion runs in fp32, not under the bf16 autocast of the training
loops: it fits the input to features through the head's gradients, and bf16's 8-bit mantissa would blunt the
strongest attacker (an audit that flatters). The CPU path is the one it always was."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from edgesplit.errors import AttackError
from edgesplit.models.device import local_cuda_device, modules_on, resolve_device, training_on
from edgesplit.progress import Progress, resolve


@dataclass(frozen=True)
class WhiteboxConfig:
    steps: int = 300
    lr: float = 0.05
    tv_weight: float = 0.05
    batch_size: int = 64
    init: str = "mean"  # "mean" (the attacker's mean image) or "gray"
    device: str = "cpu"  # cpu or cuda (cuda:N): where the inputs are optimised (the audit passes its decoders')

    def __post_init__(self) -> None:
        if self.steps < 1 or not self.lr > 0 or self.tv_weight < 0 or self.init not in ("mean", "gray"):
            raise AttackError("white-box attack needs steps >= 1, lr > 0, tv_weight >= 0, init mean|gray")
        if self.device.split(":", 1)[0] not in ("cpu", "cuda"):
            raise AttackError(f"white-box device {self.device!r} is neither cpu nor cuda (resolve 'auto' first: "
                              f"edgesplit.models.device.resolve_device)")

    def to_dict(self) -> dict:
        return asdict(self)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV), per image."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    return dh + dw


def invert_whitebox(head: torch.nn.Module, observed: np.ndarray, image_shape: tuple[int, int, int],
                    config: WhiteboxConfig | None = None, mean_image: np.ndarray | None = None,
                    progress: Progress | None = None) -> torch.Tensor:
    """Images in [0, 1] (on the CPU) whose features under `head` match `observed` (float, dequantized wire
    features). `head` is optimised through on `config.device` and left where it was."""
    config = config or WhiteboxConfig()
    device = local_cuda_device(resolve_device(config.device))  # 'cuda' without a GPU: one line
    head = head.eval()
    for p in head.parameters():
        p.requires_grad_(False)
    z = torch.from_numpy(np.ascontiguousarray(observed, np.float32))
    scale = z.pow(2).mean().clamp_min(1e-8).to(device)  # feature loss relative to the features' energy
    out = []
    with (resolve(progress).task("white-box inversion", total=len(z)) as task, modules_on(device, head),
          training_on(device, f"white-box inversion of {config.batch_size} images at a time",
                      "use --device cpu, or a smaller WhiteboxConfig batch_size")):
        for start in range(0, len(z), config.batch_size):
            target = z[start: start + config.batch_size].to(device)
            if config.init == "mean" and mean_image is not None:
                init = torch.from_numpy(mean_image.astype(np.float32)).expand(len(target), *image_shape)
            else:
                init = torch.full((len(target), *image_shape), 0.5)
            logits = torch.logit(init.clamp(0.02, 0.98)).to(device).clone().requires_grad_(True)
            opt = torch.optim.Adam([logits], lr=config.lr)
            for _ in range(config.steps):
                x = torch.sigmoid(logits)
                loss = ((head(x) - target) ** 2).mean() / scale + config.tv_weight * total_variation(x).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            out.append(torch.sigmoid(logits).detach().cpu())
            task.update(len(target))
    return torch.cat(out)
