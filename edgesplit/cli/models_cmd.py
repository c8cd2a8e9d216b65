"""`edgesplit models`, `edgesplit datasets` and `edgesplit cuts`."""

from __future__ import annotations

import argparse

from edgesplit.cli.arguments import add_checkpoint, add_input, add_json, is_onnx_path
from edgesplit.cli.common import human, print_json, print_table

CUTS_HELP = """\
List every place MODEL can be cut for inputs of the given shape: the tensor that crosses
(shape per sample), the head's parameters and multiply-accumulates, and the bytes one sample
puts on the wire at fp32 / fp16 / int8.

MODEL is a zoo or torchvision name, or a shipped ONNX file (a path ending in .onnx, with its
external data files beside it): its cuts are the tensors where only that one tensor crosses, named
as in the file (pass one to 'edgesplit export model.onnx --cut TENSOR'); --input fixes the file's
dynamic input dims (needed when its height and width are dynamic).

  block granularity (default): the architecture's natural blocks (residual blocks,
                               VGG conv groups, inverted-residual blocks; in an ONNX file,
                               each op with the activations and normalisations after it)
  layer granularity:           every graph node where a single tensor crosses

examples:
  edgesplit cuts resnet18 --input 3x224x224
  edgesplit cuts mobilenet_v3_small --input 3x224x224 --granularity layer
  edgesplit cuts classifier4 --input 1x32x32 --json > cuts.json
  edgesplit cuts shipped/model.onnx --input 3x224x224 --granularity layer
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
    p.add_argument("model", help="zoo name ('edgesplit models'), any torchvision classifier name, or an ONNX file "
                                 "(model.onnx)")
    add_input(p, help="input shape per sample (default: the checkpoint's, else 3x32x32; an ONNX file's own, "
                      "this fixes its dynamic dims)")
    p.add_argument("--granularity", choices=("block", "layer"), default="block",
                   help="block: the architecture's natural blocks; layer: every node where one "
                        "tensor crosses")
    p.add_argument("--num-classes", type=int, default=None, metavar="N",
                   help="classifier outputs (default: the checkpoint's, else 10)")
    add_checkpoint(p, help="a checkpoint from 'edgesplit train' (its shape and classes are the defaults)")
    p.add_argument("--cut", default=None, metavar="NAME",
                   help="show one cut and split the model there (checks tail(head(x)) == model(x), "
                        "by onnxruntime for an ONNX file); default: list every cut")
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
    if is_onnx_path(args.model):
        return _onnx_cuts(args)
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
    return _list_cuts(args, analysis, (c, h, h))


def _list_cuts(args, analysis, shape: tuple[int, ...]) -> int:
    """The cut table (or JSON) of a PyTorch or an ONNX cut analysis: the same layout for both."""
    cuts = analysis.all(args.granularity)
    if args.json:
        print_json({"model": args.model, "input": list(shape), "granularity": args.granularity,
                    "total_params": analysis.total_params, "total_macs": analysis.total_macs,
                    "cuts": [cut.to_dict() for cut in cuts]})
        return 0
    rows = [(cut.name, "x".join(map(str, cut.shape)), human(cut.params), human(cut.macs),
             cut.payload_bytes["fp32"], cut.payload_bytes["fp16"], cut.payload_bytes["int8"]) for cut in cuts]
    print(f"{args.model} at {'x'.join(map(str, shape))}, {args.granularity} cuts ({len(cuts)}):")
    print_table(["cut", "shape", "head params", "head MACs", "fp32 B", "fp16 B", "int8 B"], rows)
    numel = 1
    for d in shape:
        numel *= d
    print(f"whole model: {human(analysis.total_params)} params, {human(analysis.total_macs)} MACs, "
          f"input {numel * 4} B as fp32")
    return 0


def _onnx_cuts(args) -> int:
    from edgesplit.errors import ModelError
    from edgesplit.models.onnx_cuts import analyse_onnx

    if args.checkpoint or args.num_classes is not None:
        raise ModelError(f"{args.model} is an ONNX model: its weights and classes are in the file; drop "
                         f"--checkpoint and --num-classes")
    analysis = analyse_onnx(args.model, args.input)
    if args.cut is not None:
        return _show_onnx_split(args, analysis)
    return _list_cuts(args, analysis, analysis.input_shape)


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


def _show_onnx_split(args, analysis) -> int:
    """`_show_split` for an ONNX file: onnxruntime (graph optimisations off) runs the file and tail(head(x))."""
    import numpy as np

    from edgesplit.models.onnx_split import split_onnx

    cut = analysis.resolve(args.cut)
    head, tail = split_onnx(analysis, cut)
    x = np.random.default_rng(0).random((_batch(analysis), *analysis.input_shape), dtype=np.float32)
    (expected, *_) = _ort(args.model, {analysis.input_name: x})
    (features,) = _ort(head.SerializeToString(), {analysis.input_name: x})
    (got, *_) = _ort(tail.SerializeToString(), {cut.name: features})
    record = {**cut.to_dict(), "tail_params": analysis.total_params - cut.params,
              "tail_macs": analysis.total_macs - cut.macs, "split_exact": bool(np.array_equal(got, expected)),
              "split_max_abs_error": float(np.abs(got.astype(np.float64) - expected).max())}
    if args.json:
        print_json(record)
    else:
        print_table(["field", "value"], [(k, v) for k, v in record.items()])
    return 0


def _batch(analysis) -> int:
    # two samples, unless the file fixes its batch dim (then that many)
    from edgesplit.models.onnx_graph import graph_input

    batch = graph_input(analysis.model, analysis.source).type.tensor_type.shape.dim[0]
    return batch.dim_value if batch.HasField("dim_value") else 2


def _ort(model, feeds: dict) -> list:
    """Run an ONNX model (a path or serialised bytes) on the CPU with graph optimisations off: the whole model and
    its two halves then compute every node alike, so a split is exact."""
    import onnxruntime as ort

    from edgesplit.errors import ModelError

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        return session.run(None, feeds)
    except Exception as exc:  # onnxruntime's own errors: one line, not a traceback
        text = str(exc).strip().splitlines()
        raise ModelError(f"onnxruntime cannot run {'the split' if isinstance(model, bytes) else model}: "
                         f"{text[0][:200] if text else type(exc).__name__}") from None
