"""`edgesplit models`, `edgesplit datasets` and `edgesplit cuts`."""

from __future__ import annotations

import argparse

from edgesplit.cli.arguments import add_checkpoint, add_input, add_json
from edgesplit.cli.common import human, print_json, print_table

CUTS_HELP = """\
List every place MODEL can be cut for inputs of the given shape: the tensor that crosses
(shape per sample), the head's parameters and multiply-accumulates, and the bytes one sample
puts on the wire at fp32 / fp16 / int8.

  block granularity (default): the architecture's natural blocks (residual blocks,
                               VGG conv groups, inverted-residual blocks)
  layer granularity:           every graph node where a single tensor crosses

examples:
  edgesplit cuts resnet18 --input 3x224x224
  edgesplit cuts mobilenet_v3_small --input 3x224x224 --granularity layer
  edgesplit cuts classifier4 --input 1x32x32 --json > cuts.json
"""


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo",
                       description="List the model zoo (any torchvision classifier name works too).")
    p.add_argument("--all", action="store_true", help="also list torchvision's classifier names")
    add_json(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("datasets", help="list the data sets edgesplit can load",
                       description="List the data sets; all but 'digits' need a local copy (--data-root).")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("cuts", help="list a model's cut points with their costs", description=CUTS_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="zoo name ('edgesplit models') or any torchvision classifier name")
    add_input(p, help="input shape per sample (default: the checkpoint's, else 3x32x32)")
    p.add_argument("--granularity", choices=("block", "layer"), default="block",
                   help="block: the architecture's natural blocks; layer: every node where one "
                        "tensor crosses")
    p.add_argument("--num-classes", type=int, default=None, metavar="N",
                   help="classifier outputs (default: the checkpoint's, else 10)")
    add_checkpoint(p, help="a checkpoint from 'edgesplit train' (its shape and classes are the defaults)")
    p.add_argument("--cut", default=None, metavar="NAME",
                   help="show one cut and split the model there (checks tail(head(x)) == model(x)); "
                        "default: list every cut")
    add_json(p, help="print JSON (one object per cut) instead of a table")
    p.set_defaults(func=cmd_cuts)


def cmd_models(args) -> int:
    from edgesplit.models import list_models, model_entries

    entries = model_entries()
    if args.json:
        out = [{"name": e.name, "description": e.description, "source": e.source} for e in entries]
        if args.all:
            out += [{"name": n, "description": "torchvision classifier", "source": "torchvision"}
                    for n in list_models(include_torchvision=True) if n not in {e.name for e in entries}]
        print_json(out)
        return 0
    print_table(["model", "description", "from"], [(e.name, e.description, e.source) for e in entries])
    if args.all:
        extra = [n for n in list_models(include_torchvision=True) if n not in {e.name for e in entries}]
        print(f"\nalso any torchvision classifier ({len(extra)}): " + ", ".join(extra))
    return 0


def cmd_datasets(args) -> int:
    from edgesplit.data import describe_datasets

    print_table(["data set", "needs --data-root", "what"], describe_datasets())
    return 0


def cmd_cuts(args) -> int:
    import torch

    import edgesplit.defenses  # noqa: F401 - registers the 'defense' model option
    from edgesplit.models import analyse, create_model
    from edgesplit.progress import TqdmProgress

    c, h, _ = args.input or (None, None, None)  # None: the checkpoint's own shape (else 3x32x32)
    model = create_model(args.model, num_classes=args.num_classes, in_chans=c, img_size=h,
                         checkpoint=args.checkpoint, progress=TqdmProgress(disable=args.json))
    c, h = model.edgesplit_spec.in_chans, model.edgesplit_spec.img_size
    analysis = analyse(model, torch.zeros(1, c, h, h))
    if args.cut is not None:
        return _show_split(args, model, analysis, (c, h, h))
    cuts = analysis.all(args.granularity)
    if args.json:
        print_json({"model": args.model, "input": [c, h, h], "granularity": args.granularity,
                    "total_params": analysis.total_params, "total_macs": analysis.total_macs,
                    "cuts": [cut.to_dict() for cut in cuts]})
        return 0
    rows = [(cut.name, "x".join(map(str, cut.shape)), human(cut.params), human(cut.macs),
             cut.payload_bytes["fp32"], cut.payload_bytes["fp16"], cut.payload_bytes["int8"]) for cut in cuts]
    print(f"{args.model} at {c}x{h}x{h}, {args.granularity} cuts ({len(cuts)}):")
    print_table(["cut", "shape", "head params", "head MACs", "fp32 B", "fp16 B", "int8 B"], rows)
    print(f"whole model: {human(analysis.total_params)} params, {human(analysis.total_macs)} MACs, "
          f"input {c * h * h * 4} B as fp32")
    return 0


def _show_split(args, model, analysis, shape) -> int:
    import torch

    from edgesplit.models import split

    s = split(model, args.cut, analysis=analysis)
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        exact = torch.equal(s.tail(s.head(x)), model(x))
    tail_params = sum(p.numel() for p in s.tail.parameters())
    record = {**s.cut.to_dict(), "tail_params": tail_params, "tail_macs": analysis.total_macs - s.cut.macs,
              "split_exact": exact}
    if args.json:
        print_json(record)
    else:
        print_table(["field", "value"], [(k, v) for k, v in record.items()])
    return 0
