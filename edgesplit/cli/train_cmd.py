"""`edgesplit train`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgesplit.atomic import write_text_atomic
from edgesplit.cli.arguments import add_data, add_device, add_quiet, add_seed, progress, training_device

TRAIN_HELP = """\
Train a zoo model as a classifier on a data set and write OUT/model.pt (a weights-only
checkpoint that records the architecture) and OUT/train.json (data, settings, per-epoch figures).

examples:
  edgesplit train classifier4 --data digits --epochs 8 --out runs/c4
  edgesplit train resnet20 --data cifar10 --data-root ~/data --epochs 30 --out runs/r20
"""


def _data_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    add_data(g, help="data set name ('edgesplit datasets'; default digits)")
    g.add_argument("--img-size", type=int, default=None, metavar="PIXELS",
                   help="resize images to this square size (default: the data set's own: 28 for the MNIST "
                        "family, 32 for digits, faces and CIFAR, 64 for image folders and CelebA)")
    g.add_argument("--channels", type=int, choices=(1, 3), default=None,
                   help="force 1 (gray) or 3 (RGB) channels (default: the data set's own)")
    g.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use only the first N samples of each split (default: all)")
    add_seed(g, help="seed of the train/test/attack split, the initial weights and training")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a classifier and save a checkpoint", description=TRAIN_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="zoo name ('edgesplit models')")
    _data_arguments(p)
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=8, metavar="N", help="passes over the train split")
    g.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per optimiser step")
    g.add_argument("--lr", type=float, default=1e-3,
                   help="peak learning rate, decayed to 0 on a cosine schedule")
    g.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="adam, or sgd with Nesterov momentum 0.9")
    g.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS",
                   help="cross-entropy label smoothing, 0 to 1 (default: 0, none)")
    add_device(g)
    p.add_argument("--out", required=True, help="output folder (created)")
    add_quiet(p)
    p.set_defaults(func=cmd_train)


def _load_splits(args):
    from edgesplit.data import load_dataset

    common = dict(root=args.data_root, img_size=args.img_size, channels=args.channels, seed=args.seed,
                  limit=args.limit)
    return load_dataset(args.data, split="train", **common), load_dataset(args.data, split="test", **common)


def cmd_train(args) -> int:
    from edgesplit.models import create_model, save_checkpoint, train_classifier
    from edgesplit.models.training import TrainConfig

    device = training_device(args)  # 'cuda' without a GPU: one line, before any work
    bars = progress(args)
    train_set, test_set = _load_splits(args)
    note = train_set.conversion_note(args.img_size is not None, args.channels is not None)
    if note:
        bars.message(note)
    info = train_set.info
    model = create_model(args.model, num_classes=info.num_classes, in_chans=info.channels, img_size=info.img_size,
                         seed=args.seed)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                         label_smoothing=args.label_smoothing, seed=args.seed)
    print(f"training {args.model} on {info.name} ({len(train_set)} train / {len(test_set)} test images, "
          f"{info.channels}x{info.img_size}x{info.img_size}, {info.num_classes} classes) on {device}")
    result = train_classifier(model, train_set, test_set, config, device=device, progress=bars)
    out = Path(args.out)
    ckpt = save_checkpoint(model, out / "model.pt", metrics={"test_accuracy": result.test_accuracy})
    record = {"model": model.edgesplit_spec.to_dict(), "data": info.to_dict(), **result.to_dict()}
    write_text_atomic(out / "train.json", json.dumps(record, indent=2) + "\n")
    print(f"test accuracy {result.test_accuracy:.4f} after {config.epochs} epochs ({result.seconds:.0f} s); "
          f"wrote {ckpt} and {out / 'train.json'}")
    return 0
