"""`edgesplit models` and `edgesplit cuts`: tables and JSON, the checkpoint's shape as the default input, and
checkpoints that are corrupt, malformed, for another architecture or too big for memory refused in one line
(`estimate`, `export` and `defend` load checkpoints the same way)."""

import json
import struct
import zipfile

import pytest
import torch

from edgesplit.errors import ModelError
from edgesplit.models import create_model, load_checkpoint, save_checkpoint
from tests.cli.commands import run, run_error, run_ok
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


def test_models_table(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    for name in ("classifier4", "resnet18", "ir18", "vgg11_bn_sgm", "mobilenet_v3_small"):
        assert name in out


def test_cuts_table_for_resnet18_224(capsys):
    code, out, _ = run(capsys, "cuts", "resnet18", "--input", "3x224x224")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line and line.split()[0][0].isalpha()}
    assert rows["layer2.1"][1] == "128x28x28"
    assert rows["layer2.1"][-1] == str(128 * 28 * 28)  # int8 payload: one byte per value
    assert rows["relu"][1] == "64x112x112" and rows["avgpool"][1] == "512x1x1"
    assert "1.81G MACs" in out


def test_cuts_json(capsys):
    code, out, _ = run(capsys, "cuts", "classifier4", "--input", "1x32x32", "--json")
    assert code == 0
    doc = json.loads(out)
    assert [c["name"] for c in doc["cuts"]][:4] == ["features.0", "features.1", "features.2", "features.3"]
    assert doc["cuts"][1]["shape"] == [128, 8, 8]
    assert doc["cuts"][1]["payload_bytes"] == {"fp32": 4 * 8192, "fp16": 2 * 8192, "int8": 8192}


def test_cuts_layer_granularity_and_single_cut(capsys):
    code, out, _ = run(capsys, "cuts", "resnet20", "--granularity", "layer")
    assert code == 0 and "add_3" in out
    code, out, _ = run(capsys, "cuts", "resnet20", "--cut", "layer2.1", "--json")
    record = json.loads(out)
    assert record["split_exact"] is True and record["shape"] == [32, 16, 16]


def test_checkpoint_for_another_architecture(capsys, tmp_path):
    path = save_checkpoint(create_model("resnet20"), tmp_path / "r20.pt")
    line = run_error(capsys, "cuts", "resnet18", "--checkpoint", str(path))
    assert "saved for model 'resnet20', not 'resnet18'" in line


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
