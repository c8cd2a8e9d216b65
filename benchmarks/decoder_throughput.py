"""Decoder training throughput of the resnet18 @64 `layer2.1` audit: CPU vs CUDA vs 2-process DDP, one run.

    python benchmarks/decoder_throughput.py [--seconds 20] [--batch 32] [--samples 1024]

The attacker's data: the embedded digits at 3x64x64 (no download), their features from resnet18's head up to
layer2.1 (random weights: throughput does not depend on them). Each column trains the same decoder (the audit's
default family, deconv, with the audit's recipe) on the same features, same batch, for --seconds (on CUDA after a
short warm-up run: CUDA context, cuDNN autotuning), through `edgesplit.attacks.training.train_decoder`; images/s is
the record's own (every image of every optimiser step over the wall time, per-epoch validation included).

- cpu: one process, all cores (or --cpu-threads);
- cuda: one process on GPU 0 (bf16 autocast, the training set resident on the GPU), or "no GPU";
- ddp-gloo-cpu: 2 processes on the CPU (gloo; each process one half of the cores), started by torch's elastic
  launcher as `edgesplit audit --nproc 2` starts them;
- ddp-nccl-cuda: 2 processes with one GPU each (NCCL), where 2 or more GPUs exist.

Ratios are against the cpu column. Goal on one H100/H200-class GPU: cuda >= 20x the 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402


def attacker_data(samples: int):
    """(features, images) as numpy: digits at 3x64x64 and resnet18's layer2.1 features of them."""
    import torch

    from edgesplit.data import load_dataset
    from edgesplit.models import create_model, split

    images, _ = load_dataset("digits", split="train", img_size=64, channels=3, limit=samples).tensors()
    model = create_model("resnet18", num_classes=10, in_chans=3, img_size=64, seed=0).eval()
    head = split(model, "layer2.1").head
    with torch.no_grad():
        features = torch.cat([head(images[i:i + 256]) for i in range(0, len(images), 256)])
    return features.numpy(), images.numpy()


def throughput(features, images, device: str, batch: int, seconds: float) -> dict:
    """images/s of the audit's decoder training on `device` (also one rank's part under the launcher)."""
    from edgesplit.attacks.training import DecoderConfig, train_decoder
    from edgesplit.models import distributed

    with distributed.session(device):
        config = DecoderConfig(decoder="deconv", batch_size=batch, schedule="constant", epochs=10_000,
                               device=device)
        if device != "cpu":  # CUDA context and cuDNN autotuning before the clock starts
            train_decoder(features, images, DecoderConfig(decoder="deconv", batch_size=batch, epochs=1, device=device))
        trained = train_decoder(features, images, replace_budget(config, seconds))
        return {"images_per_s": trained.images_per_second, "epochs": len(trained.history),
                "seconds": trained.seconds, "world": distributed.world_size(), "params": trained.params}


def replace_budget(config, seconds: float):
    import dataclasses

    return dataclasses.replace(config, budget_s=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed training per column (default 20)")
    parser.add_argument("--batch", type=int, default=32, help="decoder batch, the same in every column")
    parser.add_argument("--samples", type=int, default=1024, help="attacker samples (default 1024)")
    parser.add_argument("--cpu-threads", type=int, default=0,
                        help="threads of the CPU columns, e.g. 2 for the issue's 2-core baseline on a bigger "
                             "machine (default 0: all cores)")
    args = parser.parse_args()
    import torch

    from edgesplit.models import distributed

    print(machine())
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus:
        print(f"GPU: {torch.cuda.get_device_name(0)} x {gpus}, CUDA {torch.version.cuda}, "
              f"cuDNN {torch.backends.cudnn.version()}")
    features, images = attacker_data(args.samples)
    print(f"resnet18 @64 layer2.1: features {'x'.join(map(str, features.shape[1:]))}, {len(features)} samples, "
          f"batch {args.batch}, {args.seconds:g} s per column")
    cores = args.cpu_threads or os.cpu_count() or 2
    torch.set_num_threads(cores)
    print(f"CPU columns on {cores} threads")
    rows = {"cpu": throughput(features, images, "cpu", args.batch, args.seconds)}
    rows["cuda"] = throughput(features, images, "cuda", args.batch, args.seconds) if gpus else None
    rows["ddp-gloo-cpu"] = distributed.launch(2, throughput, (features, images, "cpu", args.batch, args.seconds),
                                              what="gloo", threads=max(1, cores // 2))[0]
    rows["ddp-nccl-cuda"] = (distributed.launch(2, throughput, (features, images, "cuda", args.batch, args.seconds),
                                                what="nccl", threads=max(1, cores // 2))[0] if gpus >= 2 else None)
    base = rows["cpu"]["images_per_s"]
    print(f"\n{'column':<15} {'processes':>9} {'images/s':>10} {'epochs':>7} {'x cpu':>7}")
    for name, row in rows.items():
        if row is None:
            why = "no GPU" if not gpus else "needs 2 GPUs"
            print(f"{name:<15} {'-':>9} {why:>10} {'-':>7} {'-':>7}")
            continue
        print(f"{name:<15} {row['world']:>9} {row['images_per_s']:>10.1f} {row['epochs']:>7} "
              f"{row['images_per_s'] / base:>6.2f}x")
    print(f"\ndecoder: deconv, {rows['cpu']['params']:,} parameters; goal: cuda >= 20x the 2-core cpu")


if __name__ == "__main__":
    main()
