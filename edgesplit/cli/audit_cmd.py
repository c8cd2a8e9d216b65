"""`edgesplit audit`: train a decoder on the features a bundle emitted and report how well it rebuilds inputs."""

from __future__ import annotations

import argparse

from edgesplit.cli.arguments import (
    add_checkpoint,
    add_data,
    add_device,
    add_feature_file,
    add_input,
    add_limit,
    add_nproc,
    add_quiet,
    add_seed,
    is_onnx_path,
    key_values,
    names,
    progress,
    training_device,
)
from edgesplit.cli.common import print_table

AUDIT_HELP = """\
Privacy audit of a bundle. The attacker observes the exact wire features of its own images
(--features: a FeatureFile of the attack split, from 'edgesplit emit'), trains decoders on them
(dequantized exactly as the manifest says) until the validation loss stops improving, and tries to
rebuild held-out inputs (--eval-features, or the test split emitted now). By default it trains two
decoder families (deconv and nonoverlap: --decoder auto) and reports, per metric, the strongest,
naming it: an audit must not flatter. Reports MSE, PSNR (per image, then averaged), SSIM, MS-SSIM
and cosine with mean, worst case and 95 % intervals, beside a floor (the attacker's mean image,
scored the same way: what no leakage looks like); whether a person would be recognised: the top-1 /
top-5 re-identification rate among the held-out images (by SSIM and by an encoder fitted to the
attacker's own images) with chance and the floor, and the accuracy of an independent evaluation
classifier on the reconstructions; and a learning curve (25 / 50 / 100 % of the attacker's data)
that flags a cut whose leakage still rises. Writes OUT/audit.json and OUT/grid.png.

decoders: auto (default), all, or deconv, nonoverlap, upsample, resnet, attention, comma-separated
('edgesplit audit --list-decoders')

presets: the seeds' own settings by name ('edgesplit audit --list-presets'): model, input size,
cuts, decoder layout and training. With --preset no bundle or features are needed: the target is
--checkpoint or trained here on --data's train split, every cut is exported at --precisions,
emitted and attacked (INT8 also by the seed-style transfer attacker); OUT/preset.json sums up.

shipped models: with --model-onnx FILE --cut TENSOR no bundle or features are needed either: the
ONNX file is cut at the tensor ('edgesplit cuts FILE' lists the legal ones), its head exported at
each of --precisions (fp32 always: the transfer attacker trains on it), the attack and test splits
emitted and attacked: OUT/<precision>/bundle, audit.json and grid.png. The threat model records
that the attacker holds only the shipped file (it can run it on its own images; no PyTorch source,
checkpoint or training data), so --attack whitebox and query-free, which need the PyTorch model,
are refused: use --attack adaptive or gan.

examples:
  edgesplit audit --preset gpz-classifier4 --data digits --out audits/gpz
  edgesplit audit --preset cem-standard --data cifar10 --data-root ~/data/cifar-10-batches-py --out audits/cem
  edgesplit emit bundles/c4-int8 --split attack --out feats/attack.npz
  edgesplit audit --bundle bundles/c4-int8 --features feats/attack.npz --data digits --out audits/c4-int8
  edgesplit audit --bundle b/ --features a.npz --eval-features t.npz --data digits --decoder resnet --epochs 50 --out o/
  edgesplit audit --model-onnx shipped/model.onnx --cut relu_8 --input 3x64x64 --data digits --out audits/shipped
  edgesplit audit --bundle b/ --features a.npz --data digits --device cpu --nproc 2 --out o/

devices: decoders (and a preset's target), the white-box inversion, the query-free shadow head and the
evaluation classifier train on --device, CUDA by default where torch sees a GPU (bf16 autocast for
training passes, the white-box inversion and metrics in fp32; audit.json records each one's device). --nproc N splits each decoder's training over N
processes started by torch's elastic launcher (DistributedDataParallel: NCCL, one GPU each, on CUDA;
gloo on the CPU); 'torchrun --nproc-per-node N -m edgesplit.cli.main audit ...' does the same. Only
process 0 writes. With --bundle and --features only.
"""


def register(sub) -> None:
    p = sub.add_parser("audit", help="train a decoder on emitted features; how well are inputs rebuilt?",
                       description=AUDIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", metavar="DIR",
                   help="the bundle the features came from (required unless --head, --model-onnx or --preset)")
    p.add_argument("--head", default=None, metavar="ONNX",
                   help="audit an ONNX head edgesplit did not make: it is wrapped into a bundle (OUT/bundle) "
                        "and its attack/test features are emitted first (default: none, audit --bundle)")
    p.add_argument("--model-onnx", default=None, metavar="ONNX",
                   help="audit a shipped ONNX model end to end: cut at --cut, exported at each of --precisions, "
                        "emitted and attacked by an attacker holding only this file (see above; default: none)")
    p.add_argument("--cut", default=None, metavar="TENSOR",
                   help="with --model-onnx: the tensor to cut at ('edgesplit cuts FILE'; default: none, required)")
    add_input(p, help="with --model-onnx: the input shape, fixing the file's dynamic input dims (default: the "
                      "file's)")
    p.add_argument("--wire-scale", type=float, default=None, metavar="SCALE",
                   help="with --head emitting int8/uint8: its scale (default: none; required for such "
                        "a head)")
    p.add_argument("--wire-zero-point", type=int, default=None, metavar="N",
                   help="with --head emitting int8/uint8: its zero-point (default: none; required for "
                        "such a head)")
    add_feature_file(p, "--features", help="FeatureFile of the attacker's samples, the attack split from "
                                           "'edgesplit emit' (required unless --head, --model-onnx or --preset)")
    add_feature_file(p, "--eval-features", help="FeatureFile to score on (default: emit the test split)")
    add_limit(p, "--eval-limit", help="when emitting the test split: at most N samples (default: all; 256 with "
                                      "--preset)")
    add_feature_file(p, "--transfer-features",
                     help="attack-split FeatureFile of another bundle of the same head (e.g. its fp32 bundle): "
                          "also score a decoder trained on those (the transfer attacker; default: none)")
    add_data(p, help="data set the features were emitted from")
    p.add_argument("--attack", default="adaptive", choices=("adaptive", "gan", "whitebox", "query-free"),
                   help="adaptive: decoder on the wire features (default); gan: with a GAN prior; whitebox: "
                        "optimise inputs through the head's weights (needs --checkpoint); query-free: shadow head "
                        "trained through the tail, no queries")
    add_checkpoint(p, help="the checkpoint the bundle was exported from, for whitebox and query-free; with "
                           "--preset the target (default: none; --preset then trains one)")
    p.add_argument("--whitebox-steps", type=int, default=300, metavar="N",
                   help="with --attack whitebox: optimisation steps per batch of inputs")
    p.add_argument("--decoder", default="auto", metavar="LIST",
                   help="decoder families, comma-separated: auto (deconv + nonoverlap, the default), all, or names")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="decoder epoch ceiling (default 150; with --seed-recipe the preset's); training runs 15-epoch cosine "
                        "cycles and stops once a cycle improves the validation PSNR by less than 0.5 dB")
    p.add_argument("--budget-s", type=float, default=0.0, metavar="SECONDS",
                   help="at most this many seconds of decoder training in all (default 0: until converged)")
    p.add_argument("--batch-size", type=int, default=0, metavar="N",
                   help="decoder batch (default 0: about 40 steps an epoch)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--no-learning-curve", action="store_true",
                   help="skip retraining the strongest decoder on 25 %% and 50 %% of the attacker's data")
    p.add_argument("--noise-std", type=float, default=0.0, metavar="STD",
                   help="std of Gaussian noise added to the features during training (default: 0, none)")
    p.add_argument("--noise-mean", type=float, default=0.0, metavar="MEAN",
                   help="mean of that noise (default: 0)")
    p.add_argument("--noise-at-test", action="store_true", help="also add the noise when reconstructing")
    add_seed(p, help="seed of decoder training and, with --head or --preset, of the data split")
    p.add_argument("--out", metavar="DIR",
                   help="folder for audit.json and grid.png (required unless --list-decoders or "
                        "--list-presets)")
    p.add_argument("--list-decoders", action="store_true", help="list the decoders and exit")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="run a seed's attack setting end to end (see --list-presets; default: none, audit "
                        "--bundle's features)")
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.add_argument("--seed-recipe", action="store_true",
                   help="with --preset: train only the seed's decoder with the seed's own optimiser, schedule and "
                        "epochs, to compare with its paper (default: the audit's attacker, the seed's decoder "
                        "layout beside the default families, each trained to convergence; the strongest counts)")
    p.add_argument("--precisions", default="fp32,int8", metavar="LIST",
                   help="with --preset or --model-onnx: head precisions to attack, comma-separated; fp32 is always "
                        "added, the transfer attacker trains on it")
    p.add_argument("--cuts", default=None, metavar="LIST",
                   help="with --preset: a subset of its cuts, comma-separated (default: all of them)")
    add_limit(p, "--attack-limit", help="with --preset, --model-onnx or --head: attacker samples, emitted from the "
                                        "attack split (default all)")
    p.add_argument("--train-epochs", type=int, default=5, metavar="N",
                   help="with --preset and no --checkpoint: epochs to train the target first")
    p.add_argument("--decoder-option", action="append", default=[], metavar="KEY=VALUE",
                   help="decoder constructor option, repeatable, e.g. depth=deep, stem=false, width=128 "
                        "(default: none, each decoder's own)")
    add_device(p)
    add_nproc(p, help="processes to split decoder training over (default 1; see 'devices' above)")
    add_quiet(p)
    p.set_defaults(func=cmd_audit)


def cmd_audit(args) -> int:
    from edgesplit.attacks import decoder_entries

    if args.list_decoders:
        print_table(["decoder", "what"], [(e.name, e.description) for e in decoder_entries()])
        return 0
    from edgesplit.errors import AttackError

    stray = [flag for flag, value in (("--cut", args.cut), ("--input", args.input)) if value]
    if stray and not args.model_onnx:
        raise AttackError(f"{' and '.join(stray)} go with --model-onnx (a preset's cuts: --cuts)")
    from edgesplit.cli.launch import one_process_only, rank_session, relaunch

    if not args.list_presets:
        args.device = training_device(args)  # 'cuda' without a GPU fails here, before any work
        one_process_only(args, AttackError, "an audit of --bundle and --features", head=args.head,
                         model_onnx=args.model_onnx, preset=args.preset)
    if args.list_presets or args.preset:
        return _presets(args)
    from edgesplit.attacks.decoders import resolve_families

    # before any work: a malformed option or a misspelt decoder fails at once
    decoder_kwargs = key_values(args.decoder_option, "--decoder-option", "depth=deep", AttackError)
    families = resolve_families(list(names(args.decoder)))
    if args.model_onnx:
        return _shipped(args, families, decoder_kwargs)
    missing = [f"--{n}" for n in ("bundle", "features", "out") if not getattr(args, n)]
    if missing and not args.head:
        raise AttackError(f"audit needs {', '.join(missing)}, or --head ONNX and --out (see --help)")
    if args.nproc > 1:
        return relaunch(args, args.device, "audit")
    with rank_session(args, args.device):
        return _audit_files(args, families, decoder_kwargs)


def _audit_files(args, families, decoder_kwargs) -> int:
    """--bundle and --features (or --head): the audit of files, in this process or as one rank of several."""
    from pathlib import Path

    from edgesplit.errors import AttackError
    from edgesplit.export import load_bundle
    from edgesplit.runtime import load_features

    bars = progress(args)
    if args.head:
        from edgesplit.export.import_head import bundle_from_onnx

        if not args.out:
            raise AttackError("audit --head needs --out (the wrapped bundle and the results go there)")
        bundle = bundle_from_onnx(args.head, Path(args.out) / "bundle", args.wire_scale, args.wire_zero_point,
                                  force=True)
        train = _emit_attack(args, bundle, bars)
        print(f"wrapped {args.head} as {bundle.path}; emitted {len(train.ids)} attack-split samples")
    else:
        bundle = load_bundle(args.bundle)
        train = load_features(args.features)
    if train.meta["data"]["name"] != args.data:
        raise AttackError(f"{args.features} holds features of {train.meta['data']['name']!r}, not {args.data!r}: "
                          f"pass --data {train.meta['data']['name']}")
    transfer = load_features(args.transfer_features) if args.transfer_features else None
    _audit_bundle(args, bundle, train, Path(args.out), families, decoder_kwargs, bars, transfer)
    return 0


def _emit_attack(args, bundle, bars):
    """The attacker's samples: the attack split emitted by `bundle` (at most --attack-limit)."""
    from edgesplit.runtime.emit import emit_split

    return emit_split(bundle.path, args.data, "attack", args.attack_limit, args.data_root, args.seed, progress=bars)


def _audit_bundle(args, bundle, train, out, families, decoder_kwargs, bars, transfer=None, cache=None) -> dict:
    """Attack `bundle` with the attacker's features `train` (test split emitted unless --eval-features); write
    OUT/audit.json and OUT/grid.png and print the result."""
    from edgesplit.attacks.audit import audit, write_result
    from edgesplit.attacks.training import DecoderConfig
    from edgesplit.attacks.whitebox import WhiteboxConfig
    from edgesplit.models.distributed import is_writer
    from edgesplit.runtime import load_features
    from edgesplit.runtime.emit import emit_split

    if args.eval_features:
        evaluation = load_features(args.eval_features)
    else:
        evaluation = emit_split(bundle.path, args.data, "test", args.eval_limit, args.data_root,
                                train.meta["data"]["seed"], progress=bars)
    config = DecoderConfig(decoder=families[0], epochs=args.epochs or 150, batch_size=args.batch_size, lr=args.lr,
                           budget_s=args.budget_s, noise_mean=args.noise_mean,
                           noise_std=args.noise_std, noise_at_test=args.noise_at_test, seed=args.seed,
                           decoder_kwargs=decoder_kwargs, device=args.device)
    writer = is_writer()  # under torch.distributed only rank 0 writes
    result = audit(bundle, train, evaluation, config, args.data_root, bars, out / "grid.png" if writer else None,
                   transfer_features=transfer, attack=args.attack, checkpoint=args.checkpoint,
                   whitebox=WhiteboxConfig(steps=args.whitebox_steps), decoders=families,
                   learning_curve=not args.no_learning_curve, decoder_cache=cache)
    if not writer:
        return result
    path = write_result(result, out)
    m, f = result["metrics"], result["floor"]["metrics"]
    print(f"{result['model']} up to {result['cut']}, {result['precision']} head, {result['wire']} wire; "
          f"{args.attack} attack, {result['threat_model']['attacker_data']['samples']} attacker samples, "
          f"{result['evaluation']['samples']} scored")
    print_table(["decoder", "PSNR", "SSIM", "re-id top-1", "recognised", "epochs", "converged", "seconds"],
                [(name, f"{a['metrics']['psnr']['mean']:.2f}", f"{a['metrics']['ssim']['mean']:.4f}",
                  f"{a['reid']['top1']:.1%}" if "reid" in a else "-",
                  f"{a['recognition']:.1%}" if "recognition" in a else "-",
                  a["decoder"].get("epochs_run", "-"), a["decoder"].get("converged", "-"),
                  f"{a['decoder'].get('seconds', 0):.0f}") for name, a in result["attackers"].items()])
    print(f"strongest: {', '.join(f'{k} {v}' for k, v in result['strongest'].items())}")
    print_table(["metric", "attack mean", "worst case", "95% of images", "floor (mean image)"],
                [(name, f"{m[name]['mean']:.4f}", f"{m[name]['worst_case']:.4f}",
                  f"{m[name]['range95'][0]:.3f} .. {m[name]['range95'][1]:.3f}", f"{f[name]['mean']:.4f}")
                 for name in ("psnr", "ssim", "ms_ssim", "mse", "cosine")])
    _print_recognisability(result)
    if "transfer" in result:
        t = result["transfer"]["metrics"]
        print(f"transfer attacker (trained on {result['transfer']['trained_on']['wire']} features): PSNR "
              f"{t['psnr']['mean']:.4f}, SSIM {t['ssim']['mean']:.4f}  vs adaptive PSNR {m['psnr']['mean']:.4f}, "
              f"SSIM {m['ssim']['mean']:.4f}")
    print(f"wrote {path} and {out / 'grid.png'}")
    return result


def _shipped(args, families, decoder_kwargs) -> int:
    """--model-onnx: cut the file at --cut, export each precision, emit and audit each (OUT/<precision>/)."""
    from pathlib import Path

    from edgesplit.errors import AttackError
    from edgesplit.export import ExportConfig
    from edgesplit.export.pipeline import export_bundle, head_source

    # before any work (nothing is written until the file is cut): what does not go with a shipped file
    given = [flag for flag, value in (("--bundle", args.bundle), ("--head", args.head), ("--features", args.features),
                                      ("--eval-features", args.eval_features),
                                      ("--transfer-features", args.transfer_features),
                                      ("--checkpoint", args.checkpoint)) if value]
    if given:
        raise AttackError(f"audit --model-onnx exports, emits and attacks the file itself (its weights are in it): "
                          f"drop {', '.join(given)}")
    if args.attack in ("whitebox", "query-free"):
        raise AttackError(f"--attack {args.attack} needs the PyTorch model, but with --model-onnx the attacker holds "
                          f"only the shipped file: use --attack adaptive or gan")
    if not is_onnx_path(args.model_onnx):
        raise AttackError(f"--model-onnx takes an ONNX file (a path ending in .onnx), not {args.model_onnx!r}")
    missing = [flag for flag, value in (("--cut TENSOR", args.cut), ("--out DIR", args.out)) if not value]
    if missing:
        raise AttackError(f"audit --model-onnx needs {' and '.join(missing)} ('edgesplit cuts {args.model_onnx}' "
                          f"lists the cuts)")
    wanted = names(args.precisions)
    order = ("fp32", *dict.fromkeys(p for p in wanted if p != "fp32"))  # fp32 first: the transfer attacker's
    configs = {p: ExportConfig(model=args.model_onnx, cut=args.cut, precision=p, input_shape=args.input,
                               calib_data=args.data, calib_root=args.data_root, seed=args.seed) for p in order}
    source = head_source(configs["fp32"])  # the file cut once at the tensor, for every precision
    out, bars = Path(args.out), progress(args)
    cache, fp32_attack, rows = {}, None, []
    for precision, config in configs.items():
        bundle = export_bundle(config, out / precision / "bundle", force=True, progress=bars, source=source)
        train = _emit_attack(args, bundle, bars)
        print(f"exported {args.model_onnx} up to {args.cut} at {precision} as {bundle.path}; emitted "
              f"{len(train.ids)} attack-split samples")
        result = _audit_bundle(args, bundle, train, out / precision, families, decoder_kwargs, bars,
                               transfer=fp32_attack, cache=cache)
        fp32_attack = fp32_attack or train
        rows.append((precision, bundle.manifest["wire"]["bytes_per_sample"],
                     f"{result['metrics']['psnr']['mean']:.2f}", f"{result['metrics']['ssim']['mean']:.4f}",
                     f"{result['transfer']['metrics']['psnr']['mean']:.2f}" if "transfer" in result else "-",
                     f"{result['floor']['metrics']['psnr']['mean']:.2f}"))
    print(f"\n{args.model_onnx} cut at {args.cut}, attacked by one holding only the shipped file:")
    print_table(["precision", "wire B", "PSNR", "SSIM", "transfer PSNR", "floor PSNR"], rows)
    return 0


def _print_recognisability(result: dict) -> None:
    if "reidentification" in result:
        r = result["reidentification"]
        print(f"re-identification among {r['gallery']} held-out images: top-1 {r['top1']:.1%}, top-5 "
              f"{r['top5']:.1%} (chance {r['chance']['top1']:.1%} / {r['chance']['top5']:.1%}; floor "
              f"{r['floor']['top1']:.1%})")
    if "recognition" in result:
        r = result["recognition"]
        print(f"recognition by an independent classifier: {r['reconstruction']:.1%} of reconstructions (originals "
              f"{r['originals']:.1%}, floor {r['floor']:.1%}, majority class {r['chance']:.1%})")
    if "learning_curve" in result:
        print("learning curve: " + ", ".join(f"{p['samples']} samples {p['psnr']:.2f} dB"
                                              for p in result["learning_curve"]["points"])
              + f" -> {result['learning_curve']['note']}")


def _presets(args) -> int:
    from edgesplit.attacks.presets import PRESETS
    from edgesplit.bench.presets import PresetRun, run_preset
    from edgesplit.errors import AttackError

    if args.list_presets:
        print_table(["preset", "model @ px", "features at its cuts", "decoder, epochs"],
                    [(p.name, f"{p.model} @ {p.img_size}", ", ".join("x".join(map(str, s)) for _, _, s in p.cuts),
                      f"{p.decoder.decoder} {_options(p.decoder.decoder_kwargs)}, {p.decoder.epochs}")
                     for p in PRESETS.values()])
        print("\n'edgesplit audit --preset NAME --out DIR' runs one; preset.json records the seed's cut names")
        return 0
    if not args.out:
        raise AttackError("audit --preset needs --out (bundles, features, audits and preset.json go there)")
    run = PresetRun(data=args.data, root=args.data_root, checkpoint=args.checkpoint,
                    precisions=names(args.precisions), cuts=names(args.cuts) if args.cuts else None,
                    attack_limit=args.attack_limit, eval_limit=args.eval_limit or 256, epochs=args.epochs,
                    train_epochs=args.train_epochs, seed=args.seed, seed_recipe=args.seed_recipe,
                    budget_s=args.budget_s, device=args.device)
    summary = run_preset(args.preset, args.out, run, progress(args))
    target = summary["target"]
    how = (f"trained here on {target['data']} ({target['epochs']} epochs, test accuracy "
           f"{target['test_accuracy']:.4f})" if target["trained_here"] else f"checkpoint {target['checkpoint']}")
    print(f"preset {args.preset}: {summary['preset']['model']} at {summary['preset']['img_size']} px, target {how}")
    print_table(["cut", "seed's name", "precision", "wire B", "PSNR", "SSIM", "transfer PSNR", "floor PSNR"],
                [(r["cut"], r["seed_name"], r["precision"], r["payload_bytes"], f"{r['psnr']:.2f}",
                  f"{r['ssim']:.4f}", f"{r['transfer_psnr']:.2f}" if "transfer_psnr" in r else "-",
                  f"{r['floor_psnr']:.2f}") for r in summary["rows"]])
    from pathlib import Path

    print(f"wrote {Path(args.out) / 'preset.json'} and one audit folder per cut and precision")
    return 0


def _options(kwargs: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in kwargs.items())
