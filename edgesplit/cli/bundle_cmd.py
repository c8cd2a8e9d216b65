"""`edgesplit bundle verify|pack|unpack|engine`: work with bundle folders."""

from __future__ import annotations

from edgesplit.cli.arguments import add_json, add_key_file, add_out, add_precision
from edgesplit.cli.common import print_json, print_table


def register(sub) -> None:
    b = sub.add_parser("bundle", help="bundle utilities: verify, pack, unpack, engine", description="Work with bundle folders.")
    bsub = b.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    p = bsub.add_parser("verify", help="recompute every file's sha256 and compare with the manifest",
                        description="Recompute the sha256 of every file in BUNDLE and compare with manifest.json; "
                                    "exit 2 on any difference (tampered, truncated or incomplete bundle).")
    p.add_argument("bundle", help="bundle folder")
    add_key_file(p, "--verify-key", "--sign-key",
                 help="secret key file: also check the bundle's signature.json (refuses an unsigned "
                      "bundle; default: hashes only, no signature check)")
    add_json(p)
    p.set_defaults(func=cmd_verify)

    p = bsub.add_parser("pack", help="one .tar.gz of a verified bundle, for copying to a board",
                        description="Verify BUNDLE and write it as one archive (unpack it on the board with "
                                    "'edgesplit bundle unpack' or let profile/emit --device do it).")
    p.add_argument("bundle")
    add_out(p, help="archive path (.tar.gz)")
    add_key_file(p, "--sign-key", help="secret key file: put an HMAC-SHA256 signature.json made with it into the "
                                       "archive (default: the bundle's own signature.json, if it has one)")
    p.set_defaults(func=cmd_pack)

    p = bsub.add_parser("unpack", help="extract a packed bundle safely and verify it",
                        description="Extract ARCHIVE into --out, refusing absolute paths, '..' and links, "
                                    "then verify every hash.")
    p.add_argument("archive")
    add_out(p, help="bundle folder to create", force="replace an existing --out folder")
    add_key_file(p, "--verify-key", help="secret key file: refuse the archive unless its bundle is signed with this "
                                         "key (default: hashes only, no signature check)")
    p.set_defaults(func=cmd_unpack)

    p = bsub.add_parser("engine", help="on the board: build a TensorRT engine for this GPU into the bundle",
                        description="Build a TensorRT engine from BUNDLE's head.onnx on this machine's GPU and add "
                                    "it to the bundle (manifest re-signed). Engines only run on the GPU and "
                                    "TensorRT version that built them, so export ONNX on the host, copy the "
                                    "bundle to the Jetson, and run this there. INT8 bundles must be exported "
                                    "with --target tensorrt (symmetric Q/DQ). Needs the 'trt' extra.")
    p.add_argument("bundle")
    add_precision(p, help="builder precision; default: the bundle's (required for an imported --head)")
    p.add_argument("--max-batch", type=int, default=32, metavar="N",
                   help="largest batch of the optimisation profile")
    p.add_argument("--workspace-mb", type=int, default=1024, metavar="MIB",
                   help="TensorRT builder workspace in MiB")
    p.set_defaults(func=cmd_engine)


def cmd_verify(args) -> int:
    from edgesplit.export.bundle import verify_bundle
    from edgesplit.export.signing import key_id, read_key

    key = read_key(args.verify_key) if args.verify_key else None
    bundle = verify_bundle(args.bundle, key)
    files = bundle.manifest["files"]
    signed = key_id(key) if key else None
    if args.json:
        print_json({"bundle": str(bundle.path), "ok": True, "sha256": bundle.sha256, "files": files,
                    "signed_with_key": signed})
        return 0
    print(f"{bundle.path}: OK ({len(files)} files match manifest.json, which matches {bundle.onnx_path.name}'s "
          f"inputs and outputs" + (f"; signature by key {signed} checked" if signed else "")
          + f"; bundle sha256 {bundle.sha256[:16]}...)")
    print_table(["file", "bytes", "sha256"], [(n, r["bytes"], r["sha256"][:16] + "...") for n, r in files.items()])
    return 0


def cmd_pack(args) -> int:
    from edgesplit.export.signing import key_id, read_key
    from edgesplit.runtime.pack import pack_bundle

    key = read_key(args.sign_key) if args.sign_key else None
    path = pack_bundle(args.bundle, args.out, sign_key=key)
    print(f"wrote {path} ({path.stat().st_size} bytes" + (f", signed with key {key_id(key)})" if key else ")"))
    return 0


def cmd_unpack(args) -> int:
    from edgesplit.export.signing import read_key
    from edgesplit.runtime.pack import unpack_bundle

    key = read_key(args.verify_key) if args.verify_key else None
    path = unpack_bundle(args.archive, args.out, force=args.force, key=key)
    print(f"unpacked and verified {path}")
    return 0


def cmd_engine(args) -> int:
    from edgesplit.export.engines import add_engine

    bundle = add_engine(args.bundle, precision=args.precision, max_batch=args.max_batch,
                        workspace_mb=args.workspace_mb)
    for name, r in bundle.engines().items():
        print(f"{bundle.path}: engine {name}: TensorRT {r['tensorrt_version']} on {r['gpu']} "
              f"(sm {r['compute_capability']}, {r['precision']}, batch {r['profile']['min_batch']}-"
              f"{r['profile']['max_batch']})")
    return 0
