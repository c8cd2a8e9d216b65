"""`edgesplit defend`: fine-tune a model with a defense at a cut; the checkpoint works everywhere else."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgesplit.atomic import write_text_atomic
from edgesplit.cli.arguments import (
    add_checkpoint,
    add_data,
    add_device,
    add_input,
    add_nproc,
    add_quiet,
    add_seed,
    key_values,
    progress,
    training_device,
)
from edgesplit.cli.common import print_table

HELP = """\
Insert a defense at CUT, fine-tune the model with it on --data's train split, and write OUT/model.pt
and OUT/defend.json. The checkpoint carries the defense in its model spec, so export, profile, emit,
audit and sweep take it unchanged: export the defended head at the cut printed at the end
(CUT.defense). Inference-time randomness (noise, dropout) is part of the exported head, so an audit
attacks what really ships.

defenses ('edgesplit defend --list'): noise, topk, channel-subset, dropout, bottleneck, cem,
adversarial, lipschitz, pruning, normalize, fft-entropy

examples:
  edgesplit defend classifier4 --checkpoint runs/c4/model.pt --cut features.1 --defense noise \\
      --param std=0.1 --data digits --epochs 5 --out defended/c4-noise
  edgesplit export classifier4 --checkpoint defended/c4-noise/model.pt --cut features.1.defense \\
      --precision int8 --out bundles/c4-noise-int8
"""


def register(sub) -> None:
    p = sub.add_parser("defend", help="fine-tune a model with a defense at a cut (noise, CEM, pruning, ...)",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model name (zoo or torchvision)")
    p.add_argument("--cut", metavar="NAME",
                   help="block cut to defend, a module path, e.g. features.1 or layer2 (required)")
    p.add_argument("--defense", metavar="NAME", help="defense name, see --list (required)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="defense parameter, repeatable (default: none, the defense's own; see --list)")
    add_checkpoint(p, help="the undefended model to start from, recommended (default: none: random weights "
                           "seeded by --seed)")
    add_input(p, help="input shape without a checkpoint (default: the data's shape)")
    add_data(p, help="data set ('edgesplit datasets'): fine-tuned on its train split, scored on its test split")
    p.add_argument("--epochs", type=int, default=5, metavar="N",
                   help="fine-tuning passes over the train split")
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per optimiser step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    add_seed(p, help="seed of the data split, of fine-tuning and of the random weights without --checkpoint")
    p.add_argument("--out", metavar="DIR", help="output folder for model.pt and defend.json (required)")
    p.add_argument("--list", action="store_true", help="list the defenses and their parameters")
    add_device(p)
    add_nproc(p, help="processes to split fine-tuning over (torch's elastic launcher; gloo on the CPU, NCCL with "
                      "one GPU each on CUDA; process 0 writes; default 1)")
    add_quiet(p)
    p.set_defaults(func=cmd_defend)


def cmd_defend(args) -> int:
    from edgesplit.defenses import DEFENSES

    if args.list:
        print_table(["defense", "parameters (defaults)", "what", "from"],
                    [(d.name, ", ".join(f"{k}={v}" for k, v in d.defaults.items()) or "-", d.description, d.source)
                     for d in DEFENSES.values()])
        return 0
    from edgesplit.cli.launch import rank_session, relaunch
    from edgesplit.defenses import get_defense
    from edgesplit.errors import DefenseError

    missing = [f"--{n}" if n != "model" else "MODEL" for n in ("model", "cut", "defense", "out")
               if not getattr(args, n)]
    if missing:
        raise DefenseError(f"defend needs {', '.join(missing)} (see 'edgesplit defend --help')")
    params = key_values(args.param, "--param", "std=0.1", DefenseError)
    get_defense(args.defense).resolve(params)  # a bad parameter fails before any work
    device = training_device(args)  # so does 'cuda' without a GPU
    if args.nproc > 1:
        return relaunch(args, device, "defend")
    with rank_session(args, device) as writer:
        return _defend(args, params, device, writer)


def _defend(args, params, device, writer) -> int:
    """Fine-tune and (rank 0, or the only process) write OUT/model.pt and OUT/defend.json."""
    from edgesplit.data import load_dataset
    from edgesplit.defenses import DefendConfig, defend_model
    from edgesplit.models import create_model, save_checkpoint

    probe = create_model(args.model, checkpoint=args.checkpoint) if args.checkpoint else None
    if probe is not None:
        c, size = probe.edgesplit_spec.in_chans, probe.edgesplit_spec.img_size
    elif args.input:
        c, size = args.input[:2]
    else:
        c, size = None, None
    common = dict(root=args.data_root, img_size=size, channels=c, seed=args.seed)
    train_set = load_dataset(args.data, split="train", **common)
    test_set = load_dataset(args.data, split="test", **common)
    info = train_set.info
    model = probe or create_model(args.model, num_classes=info.num_classes, in_chans=info.channels,
                                  img_size=info.img_size, seed=args.seed)
    config = DefendConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    model, report = defend_model(model, args.cut, args.defense, params, train_set, test_set, config,
                                 progress(args), device=device)
    if not writer:
        return 0
    out = Path(args.out)
    ckpt = save_checkpoint(model, out / "model.pt", metrics={"test_accuracy": report["test_accuracy"]})
    report["checkpoint"] = ckpt.name
    write_text_atomic(out / "defend.json", json.dumps(report, indent=2) + "\n")
    shown = ", ".join(f"{k}={v}" for k, v in report["params"].items() if k != "keep") or "defaults"
    print(f"{args.defense} at {args.cut} ({shown}): test accuracy {report['test_accuracy_before']:.4f} -> "
          f"{report['test_accuracy']:.4f} after {args.epochs} epochs")
    print(f"wrote {ckpt} and {out / 'defend.json'}; export the defended head with --cut {report['defended_cut']}")
    return 0
