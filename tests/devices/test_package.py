"""edgesplit.devices (and the devices command) never import torch: they run on boards without it."""

import subprocess
import sys


def test_devices_package_is_torch_free():
    code = ("import edgesplit.devices, edgesplit.devices.samplers, edgesplit.devices.tegrastats, "
            "edgesplit.devices.roofline, edgesplit.devices.detect, edgesplit.cli.devices_cmd, sys; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
