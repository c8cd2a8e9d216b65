"""`edgesplit models` and `edgesplit cuts`: tables and JSON, the checkpoint's shape as the default input, and
checkpoints that are corrupt, malformed, for another architecture or too big for memory refused in one line
(`estimate`, `export` and `defend` load checkpoints the same way)."""

import struct
import zipfile

import pytest
import torch

from edgesplit.errors import ModelError
from edgesplit.models import load_checkpoint
from tests.cli.commands import run_error, run_ok
from tests.models.helpers import MALFORMED

PROFILE = "raspberry-pi-5-8gb"


def _flip_tensor_bytes(path, count: int = 64) -> None:
    """Flip `count` bytes in the middle of the largest tensor stored in a torch zip file (what torch.load
    does not notice: it does not check the zip CRCs)."""
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda m: m.file_size)
    with open(path, "r+b") as f:
        f.seek(member.header_offset)
        header = f.read(30)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = member.header_offset + 30 + name_len + extra_len + member.file_size // 2
        f.seek(start)
        data = bytearray(f.read(count))
        f.seek(start)
        f.write(bytes(b ^ 0xFF for b in data))


def test_flipped_bytes_in_a_checkpoint_are_refused_as_corrupt(c4_gray, tmp_path, capsys):
    path = tmp_path / "flipped.pt"
    path.write_bytes(c4_gray.read_bytes())
    assert load_checkpoint(path).note is None  # an intact edgesplit checkpoint: checked, nothing to say
    _flip_tensor_bytes(path)
    with pytest.raises(ModelError, match="is corrupt") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    line = run_error(capsys, "cuts", "classifier4", "--checkpoint", str(path))
    assert "corrupt" in line


def test_cuts_and_estimate_default_to_the_checkpoints_shape(c4_gray, capsys):
    out, _ = run_ok(capsys, "cuts", "classifier4", "--checkpoint", str(c4_gray))
    assert "classifier4 at 1x32x32" in out
    out, _ = run_ok(capsys, "estimate", "classifier4", "--checkpoint", str(c4_gray), "--device-profile", PROFILE)
    assert "classifier4 at 1x32x32" in out
    for command in (["cuts", "classifier4"], ["estimate", "classifier4", "--device-profile", PROFILE]):
        line = run_error(capsys, *command, "--checkpoint", str(c4_gray), "--input", "3x32x32")
        assert "in_chans=1, but in_chans=3 was asked" in line


@pytest.mark.parametrize("command", [
    ["cuts", "classifier4"],
    ["estimate", "classifier4", "--device-profile", PROFILE],
    ["export", "classifier4", "--cut", "features.0", "--out", "{tmp}/bundle"],
    ["defend", "classifier4", "--cut", "features.1", "--defense", "noise", "--out", "{tmp}/defended"],
])
def test_every_command_that_loads_a_checkpoint_refuses_a_malformed_one(command, tmp_path, capsys):
    for case in ("spec-a-string", "no-state_dict", "state_dict-a-string", "non-tensor-value"):
        payload, expected = MALFORMED[case]
        path = tmp_path / f"{case}.pt"
        torch.save(payload, path)
        argv = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--checkpoint", str(path)]
        line = run_error(capsys, *argv)
        assert expected in line and "malformed" in line
    assert not (tmp_path / "bundle").exists() and not (tmp_path / "defended").exists()


@pytest.mark.parametrize("argv, expected, fix", [
    (["cuts", "resnet18", "--num-classes", "100000000"], "191.1 GB of weights", "use fewer --num-classes"),
    (["cuts", "resnet18", "--input", "1x1000000x1000000"], "of activations for one image", "a smaller --input"),
    (["export", "resnet18", "--cut", "layer1", "--num-classes", "100000000"], "of weights", "--num-classes"),
    (["estimate", "resnet18", "--input", "3x1000000x1000000", "--device-profile", PROFILE], "activations",
     "a smaller --input"),
])
def test_a_model_too_big_for_memory_is_refused_before_allocating(argv, expected, fix, capsys, tmp_path):
    if argv[0] == "export":
        argv = [*argv, "--out", str(tmp_path / "b")]
    line = run_error(capsys, *argv)
    assert "needs at least" in line and "available:" in line and expected in line and fix in line
