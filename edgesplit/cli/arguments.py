"""Arguments several commands share: their types, the flags declared alike, and the bars --quiet turns off.

A flag that means the same thing in several commands is declared here once (its type, default and metavar);
each command passes its own help text where the flag's role differs (the --seed of training vs of an audit).
"""

from __future__ import annotations

import argparse

from edgesplit.errors import EdgesplitError
from edgesplit.progress import TqdmProgress
from edgesplit.vocab import PRECISIONS, WIRES, parse_chw

# For help texts: 'fp32, fp16, int8' and the default of a precision list, 'fp32,fp16,int8'.
PRECISION_NAMES = ", ".join(PRECISIONS)
ALL_PRECISIONS = ",".join(PRECISIONS)

DATA_ROOT_HELP = ("folder with a local copy of the data set (default: none; digits and faces are "
                  "embedded and need none)")


# --- argument types ------------------------------------------------------------------------------------


def input_shape(text: str) -> tuple[int, int, int]:
    """Parse '3x32x32' (channels x height x width); square images only."""
    try:
        c, h, w = parse_chw(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"malformed input shape {text!r}: use CHANNELSxHEIGHTxWIDTH, e.g. 3x32x32") from None
    if c < 1 or h < 8 or w < 8:
        raise argparse.ArgumentTypeError(f"input shape {text!r} is too small: channels >= 1, sides >= 8 pixels")
    if h != w:
        raise argparse.ArgumentTypeError(f"input shape {text!r} is not square: edgesplit models take HxH images")
    return c, h, w


def is_onnx_path(model: str) -> bool:
    """A MODEL argument that names a shipped ONNX file (a path ending in .onnx) rather than a model to build; the
    same test as `ExportConfig.is_onnx`."""
    return str(model).lower().endswith(".onnx")


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def positive_int(text: str) -> int:
    """An argparse type for counts and sizes that must be at least 1 (--batch-size, --limit...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (1 or more), got {text!r}")
    return value


def names(text: str) -> tuple[str, ...]:
    """'fp32,,int8' -> ('fp32', 'int8'): the names of a comma-separated option, empty ones dropped. The library
    that takes them checks them (with the closest valid name in its error)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def key_values(pairs: list[str], flag: str, example: str, error: type[EdgesplitError]) -> dict:
    """KEY=VALUE strings of a repeatable `flag` to a dict, with ints, floats and true/false read as such; a
    pair without '=' raises `error` naming `flag` and an `example` of its form."""
    out: dict = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise error(f"{flag} {pair!r} is not KEY=VALUE (e.g. {example})")
        value: object = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(text)
                    break
                except ValueError:
                    pass
        out[key] = value
    return out


# --- flags declared by several commands -------------------------------------------------------------------


def add_quiet(p, help: str | None = "no progress bars") -> None:
    p.add_argument("--quiet", action="store_true", help=help)


def progress(args) -> TqdmProgress:
    """The progress bars of a command with --quiet: drawn unless --quiet."""
    return TqdmProgress(disable=args.quiet)


def add_json(p, help: str | None = "machine-readable output", inherit: bool = False) -> None:
    """--json; `inherit`: on an action of a command that has --json itself (devices detect), not given means the
    command's own value, not False."""
    p.add_argument("--json", action="store_true", help=help, **({"default": argparse.SUPPRESS} if inherit else {}))


def add_seed(p, help: str) -> None:
    p.add_argument("--seed", type=int, default=0, metavar="N", help=help)


def add_input(p, help: str) -> None:
    """--input CxHxW, the input shape per sample; None when not given (each command says what it then uses)."""
    p.add_argument("--input", type=input_shape, default=None, metavar="CxHxW", help=help)


def add_checkpoint(p, help: str) -> None:
    p.add_argument("--checkpoint", default=None, metavar="FILE", help=help)


def add_data(p, help: str, flag: str = "--data", root_help: str = DATA_ROOT_HELP) -> None:
    """A data set by name (`flag`, default digits) and --data-root, the folder of a local copy of it."""
    p.add_argument(flag, default="digits", metavar="NAME", help=help)
    p.add_argument("--data-root", default=None, metavar="DIR", help=root_help)


def add_precision(p, help: str, default: str | None = None) -> None:
    """--precision, one head precision."""
    p.add_argument("--precision", choices=PRECISIONS, default=default, help=help)


def add_wire(p, help: str) -> None:
    """--wire, what the device sends; None when not given (the precision's own)."""
    p.add_argument("--wire", choices=WIRES, default=None, help=help)


def add_out(p, help: str, force: str | None = None) -> None:
    """--out, required; with `force` (its help text) also --force, to replace what --out names."""
    p.add_argument("--out", required=True, help=help)
    if force is not None:
        p.add_argument("--force", action="store_true", help=force)


def add_key_file(p, *flags: str, help: str) -> None:
    """A secret key file (--sign-key, --verify-key, or both names for one option); None when not given."""
    p.add_argument(*flags, default=None, metavar="FILE", help=help)


def add_feature_file(p, flag: str, help: str) -> None:
    """A FeatureFile (.npz from 'edgesplit emit') to read; None when not given."""
    p.add_argument(flag, default=None, metavar="NPZ", help=help)


def add_limit(p, flag: str, help: str) -> None:
    """At most N samples; None when not given (all, or the command's own default)."""
    p.add_argument(flag, type=int, default=None, metavar="N", help=help)


def add_device(p, help: str = "where training runs: cpu, cuda (or cuda:N) or auto (default: cuda when torch sees a "
                              "GPU, else cpu)") -> None:
    """--device, where a command trains (resolved by `training_device`)."""
    p.add_argument("--device", default="auto", metavar="DEVICE", help=help)


def training_device(args) -> str:
    """--device resolved: 'auto' to cuda or cpu; 'cuda' without a GPU is one line (exit 2)."""
    from edgesplit.models.device import resolve_device

    return resolve_device(args.device)


def add_nproc(p, help: str) -> None:
    p.add_argument("--nproc", type=positive_int, default=1, metavar="N", help=help)


def add_board(g, help: str) -> None:
    """--device (local or ssh://), with the ssh settings that reach a board: profile, emit, export."""
    g.add_argument("--device", default="local", metavar="URL", help=help)
    g.add_argument("--ssh-identity", default=None, metavar="FILE",
                   help="private key for --device ssh:// (default: ssh's own keys and agent)")
    g.add_argument("--ssh-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra ssh -o option, repeatable, e.g. StrictHostKeyChecking=accept-new "
                        "(default: none)")
    g.add_argument("--remote-python", default="python3", metavar="PATH",
                   help="python with edgesplit installed on the device")


def board(args):
    """The SshDevice --device names (an ssh:// URL; a malformed one is one line, exit 2)."""
    from edgesplit.devices.remote import SshDevice, parse_device

    return SshDevice(parse_device(args.device), python=args.remote_python, identity=args.ssh_identity,
                     options=tuple(args.ssh_option))
