"""`edgesplit devices`: the board profiles, one profile with its sources, and what this host is."""

from __future__ import annotations

import argparse
import textwrap

from edgesplit.cli.arguments import add_json
from edgesplit.cli.common import print_json, print_table

DEVICES_HELP = """\
The boards edgesplit knows: dense peak compute of the fastest engine its runtimes can use (the GPU
on Jetsons, DLAs excluded; the CPU on the Raspberry Pi and x86), memory, bandwidth and the INT8
layout to export for them. Roofline estimates for a board not at hand use these numbers; every
profile names where its figures come from and which ones are derived ('show NAME').

examples:
  edgesplit devices                           the profiles as a table
  edgesplit devices show jetson-orin-nano-8gb one profile with its sources
  edgesplit devices detect                    what this machine is, and its closest profile
  edgesplit devices detect --json
"""


def register(sub) -> None:
    p = sub.add_parser("devices", help="list device profiles, show one, or detect this host",
                       description=DEVICES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_json(p)
    p.set_defaults(func=cmd_devices)
    actions = p.add_subparsers(dest="devices_command", metavar="ACTION", parser_class=type(p))

    d = actions.add_parser("detect", help="what this machine is (Jetson, Raspberry Pi, x86) and its closest profile",
                           description="Recognise this machine from /etc/nv_tegra_release, the device tree and "
                                       "/proc/cpuinfo; print its closest profile and what was read.")
    add_json(d, inherit=True)
    d.add_argument("--root", default="/", metavar="DIR",
                   help="read the board's files under DIR instead of / (for testing)")
    d.set_defaults(func=cmd_detect)

    s = actions.add_parser("show", help="one profile with the source of every figure",
                           description="Print one device profile and where its numbers come from.")
    s.add_argument("name", help="a profile name ('edgesplit devices' lists them)")
    add_json(s, inherit=True)
    s.set_defaults(func=cmd_show)


def cmd_devices(args) -> int:
    from edgesplit.devices import list_boards

    profiles = list_boards()
    if args.json:
        print_json([p.to_dict() for p in profiles])
        return 0
    rows = [(p.name, p.kind, p.cpu_cores, _short_gpu(p.gpu), "gpu" if p.kind == "jetson" else "cpu",
             _num(p.peak_tflops["fp32"]), _num(p.peak_tflops["fp16"]), _num(p.peak_tflops["int8"]),
             _num(p.memory_gb), _num(p.memory_bandwidth_gbs), p.int8_target) for p in profiles]
    print_table(["profile", "kind", "cores", "gpu", "peaks on", "fp32 TFLOPS", "fp16 TFLOPS", "int8 TOPS",
                 "memory GB", "GB/s", "int8 target"], rows)
    print("\npeaks are dense (Jetson sparse-TOPS figures halved; DLAs excluded); several are derived, "
          "not published: 'edgesplit devices show NAME' names the source of each")
    return 0


def cmd_show(args) -> int:
    from edgesplit.devices import get_board

    p = get_board(args.name)
    if getattr(args, "json", False):
        print_json(p.to_dict())
        return 0
    rows = [("name", p.name), ("title", p.title), ("kind", p.kind), ("cpu", p.cpu), ("cpu cores", p.cpu_cores),
            ("gpu", p.gpu or "-"),
            ("peak fp32", f"{_num(p.peak_tflops['fp32'])} TFLOPS"),
            ("peak fp16", f"{_num(p.peak_tflops['fp16'])} TFLOPS"),
            ("peak int8", f"{_num(p.peak_tflops['int8'])} TOPS (dense)"),
            ("memory", f"{_num(p.memory_gb)} GB"), ("bandwidth", f"{_num(p.memory_bandwidth_gbs)} GB/s"),
            ("int8 target", p.int8_target), ("power", p.power_w)]
    print_table(["field", "value"], rows)
    print("\nsource:")
    print(textwrap.fill(p.source, width=100, initial_indent="  ", subsequent_indent="  "))
    return 0


def cmd_detect(args) -> int:
    from edgesplit.devices import available_samplers, detect_host

    host = detect_host(args.root)
    samplers = available_samplers() if args.root == "/" else []
    if getattr(args, "json", False):
        print_json({**host.to_dict(), "samplers": samplers})
        return 0
    details = dict(host.details)
    match = details.pop("profile_match", None)
    note = details.pop("note", None)
    profile = host.profile or "none"
    if match:
        profile += f" ({match} match)"
    rows = [("kind", host.kind), ("model", host.model), ("profile", profile), ("recognised from", host.how or "-")]
    rows += [(key, _detail(value)) for key, value in details.items()]
    if samplers:
        rows.append(("samplers", ", ".join(samplers)))
    print_table(["field", "value"], rows)
    if note:
        print(f"\nnote: {note}")
    return 0


def _short_gpu(gpu: str | None) -> str:
    """'1024-core NVIDIA Ampere GPU with 32 Tensor Cores, ...' -> '1024-core NVIDIA Ampere GPU'."""
    if not gpu:
        return "-"
    return gpu.split(" with ")[0].split(" (")[0].split(",")[0]


def _num(x: float) -> str:
    return f"{x:g}"


def _detail(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_detail(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)
