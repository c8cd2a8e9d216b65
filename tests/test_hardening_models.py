"""Issue 13 (hardening), models and data: checkpoint digests and malformed checkpoints, the checkpoint's shape
as the default input, sizes that cannot fit in memory, wrongly laid-out image folders, every training image
used every epoch, and the default conversions said out loud."""

import struct
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from edgesplit.cli.main import main
from edgesplit.data import load_dataset
from edgesplit.errors import DataError, ModelError
from edgesplit.models import create_model, load_checkpoint, save_checkpoint, train_classifier
from edgesplit.models.checkpoint import FORMAT, VERSION
from edgesplit.models.training import TrainConfig, recalibrate_batchnorm
from edgesplit.progress import RecordingProgress

PROFILE = "raspberry-pi-5-8gb"


def run_ok(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


def run_error(capsys, *argv) -> str:
    """Run a command expected to fail; return its single stderr line."""
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(list(argv)))
    _, err = capsys.readouterr()
    assert exc.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def c4_gray(tmp_path_factory):
    """A classifier4 checkpoint for 1x32x32 inputs (the demo's shape), untrained: only its shape matters."""
    path = tmp_path_factory.mktemp("ckpt") / "c4.pt"
    return save_checkpoint(create_model("classifier4", in_chans=1, img_size=32, seed=0), path)


# ----------------------------------------------------------------------------- item 3: tensor digest


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


def test_checkpoints_without_a_digest_load_with_a_note(c4_gray, tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(create_model("classifier4", in_chans=1).state_dict(), bare)
    progress = RecordingProgress()
    ckpt = load_checkpoint(bare, progress)
    assert ckpt.spec is None and "without" in ckpt.note and "digest" in ckpt.note
    assert ("message", ckpt.note, None) in progress.events
    old = torch.load(c4_gray, weights_only=True)
    del old["tensors_sha256"]  # as written by an edgesplit before digests
    torch.save(old, tmp_path / "old.pt")
    progress = RecordingProgress()
    model = create_model("classifier4", checkpoint=str(tmp_path / "old.pt"), progress=progress)
    assert model.edgesplit_spec.in_chans == 1
    assert any(kind == "message" and "digest" in text for kind, text, _ in progress.events)


# ----------------------------------------------------------------------------- item 7: the checkpoint's shape


def test_cuts_and_estimate_default_to_the_checkpoints_shape(c4_gray, capsys):
    out, _ = run_ok(capsys, "cuts", "classifier4", "--checkpoint", str(c4_gray))
    assert "classifier4 at 1x32x32" in out
    out, _ = run_ok(capsys, "estimate", "classifier4", "--checkpoint", str(c4_gray), "--device-profile", PROFILE)
    assert "classifier4 at 1x32x32" in out
    for command in (["cuts", "classifier4"], ["estimate", "classifier4", "--device-profile", PROFILE]):
        line = run_error(capsys, *command, "--checkpoint", str(c4_gray), "--input", "3x32x32")
        assert "in_chans=1, but in_chans=3 was asked" in line


# ----------------------------------------------------------------------------- item 9: malformed checkpoints


def _edgesplit_payload(**changes) -> dict:
    model = create_model("classifier4", in_chans=1, seed=0)
    payload = {"format": FORMAT, "version": VERSION, "spec": model.edgesplit_spec.to_dict(),
               "state_dict": model.state_dict(), "metrics": {}}
    for key, value in changes.items():
        if value is KeyError:
            del payload[key]
        else:
            payload[key] = value
    return payload


MALFORMED = {
    "spec-a-string": (_edgesplit_payload(spec="classifier4"), "'spec' is a str"),
    "spec-a-list": (_edgesplit_payload(spec=[1, 2]), "'spec' is a list"),
    "spec-without-name": (_edgesplit_payload(spec={"num_classes": 10}), "needs a 'name'"),
    "spec-classes-a-string": (_edgesplit_payload(spec={"name": "classifier4", "num_classes": "ten"}),
                              "num_classes must be an integer"),
    "no-state_dict": (_edgesplit_payload(state_dict=KeyError), "no 'state_dict'"),
    "state_dict-a-string": (_edgesplit_payload(state_dict="weights"), "'state_dict' is a str"),
    "non-tensor-value": (_edgesplit_payload(state_dict={"fc.0.weight": [1.0, 2.0]}), "is a list, not a tensor"),
    "metrics-a-string": (_edgesplit_payload(metrics="good"), "'metrics' is a str"),
    "a-list": ([torch.zeros(2)], "not a checkpoint"),
    "a-training-dict": ({"epoch": 3, "model": {"w": torch.zeros(2)}}, "it holds epoch, model"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_checkpoints_are_one_line_errors(case, tmp_path):
    payload, expected = MALFORMED[case]
    path = tmp_path / f"{case}.pt"
    torch.save(payload, path)
    with pytest.raises(ModelError) as err:
        load_checkpoint(path)
    assert expected in str(err.value) and "\n" not in str(err.value)


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


# ----------------------------------------------------------------------------- item 12: sizes vs memory


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


def test_footprint_counts_weights_and_activations_without_allocating():
    from edgesplit.models.memory import Footprint, check_fits, footprint
    from edgesplit.models.registry import ModelSpec, build

    spec = ModelSpec("resnet18", 100_000_000, 3, 32)
    needs = footprint(lambda: build(spec), (3, 32, 32))
    assert needs.weights > (512 + 1) * 100_000_000 * 4  # the final Linear alone
    small = footprint(lambda: build(ModelSpec("classifier4", 10, 1, 32)), (1, 32, 32))
    assert small.input == 32 * 32 * 4 and small.largest_activation == 64 * 32 * 32 * 4
    with pytest.raises(ModelError, match="needs at least 1.0 KB .* has 1000 B available: do less"):
        check_fits("it", Footprint(1024, 0, 0), "do less", available=1000)


def test_an_allocator_failure_becomes_one_line_of_advice():
    from edgesplit.models.memory import allocation_advice

    failure = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 822083584000 bytes. Error code 12")
    with pytest.raises(ModelError, match=r"^out of memory training at batch 64 .*: lower --batch-size$"), \
            allocation_advice("training at batch 64", "lower --batch-size"):
        raise failure
    with pytest.raises(ModelError, match="out of memory"), allocation_advice("x", "y"):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    with pytest.raises(RuntimeError, match="unrelated"), allocation_advice("x", "y"):
        raise RuntimeError("unrelated")


# ----------------------------------------------------------------------------- item 16: folder layouts


def _png(path, value=128, size=(16, 16), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_image_folder_without_class_folders_is_refused(tmp_path, capsys):
    for i in range(6):
        _png(tmp_path / "faces" / "face" / f"{i}.png", 20 * i)
        _png(tmp_path / "faces" / "nonface" / f"{i}.png", 200)
    root = tmp_path / "faces" / "face"
    line = run_error(capsys, "train", "classifier4", "--data", "imagefolder", "--data-root", str(root),
                     "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet")
    assert "holds 6 image(s) directly" in line and "one sub-folder of images per class" in line
    assert f"pass its parent {tmp_path / 'faces'}" in line
    assert not (tmp_path / "run").exists()


def test_a_stray_image_beside_the_class_folders_is_not_refused(tmp_path):
    for i in range(6):
        _png(tmp_path / "pets" / "cats" / f"{i}.png", 20 * i)
        _png(tmp_path / "pets" / "dogs" / f"{i}.png", 200)
    _png(tmp_path / "pets" / "preview.png")
    data = load_dataset("imagefolder", root=tmp_path / "pets", split="train")
    assert data.info.num_classes == 2


def test_image_folder_with_one_class_only_is_refused(tmp_path, capsys):
    for i in range(6):
        _png(tmp_path / "one" / "cats" / f"{i}.png", 20 * i)
    line = run_error(capsys, "train", "classifier4", "--data", "imagefolder", "--data-root", str(tmp_path / "one"),
                     "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet")
    assert "one class folder only (cats)" in line and "at least two" in line
    for part in ("train", "test"):
        for i in range(3):
            _png(tmp_path / "split" / part / "cats" / f"{i}.png")
    with pytest.raises(DataError, match="one class folder only"):
        load_dataset("imagefolder", root=tmp_path / "split", split="test")


# ----------------------------------------------------------------------------- item 17: every image, every epoch


class Counting(torch.utils.data.Dataset):
    """Random 8-feature samples that count how often each is read."""

    def __init__(self, n: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(n, 8, generator=generator), torch.arange(n) % 2
        self.reads = np.zeros(n, dtype=int)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        self.reads[i] += 1
        return self.x[i], int(self.y[i])


def _bn_mlp() -> nn.Module:
    """BatchNorm1d: fails in training mode on a batch of one sample."""
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))


@pytest.mark.parametrize("n, batches", [(120, 2), (65, 1), (129, 2), (130, 3)])
def test_training_uses_every_image_every_epoch_without_a_batch_of_one(n, batches):
    data = Counting(n)
    progress = RecordingProgress()
    train_classifier(_bn_mlp(), data, None, TrainConfig(epochs=2, batch_size=64, recalibrate_bn=False),
                     progress=progress)
    assert data.reads.tolist() == [2] * n  # every image, once per epoch
    assert sum(kind == "update" for kind, *_ in progress.events) == 2 * batches


def test_batchnorm_recalibration_handles_a_last_batch_of_one():
    data = Counting(129)
    assert recalibrate_batchnorm(_bn_mlp(), data, batch_size=128) == 1
    assert data.reads.tolist() == [1] * 129


def test_training_on_a_single_image_is_a_clear_error():
    with pytest.raises(ModelError, match="at least 2"):
        train_classifier(_bn_mlp(), Counting(1), None, TrainConfig(epochs=1))


# ----------------------------------------------------------------------------- item 19: say what was chosen


def test_default_conversions_are_said_before_training(tmp_path, capsys):
    for cls, value in (("a", 30), ("b", 220)):
        for i in range(6):
            _png(tmp_path / "gray" / cls / f"{i}.png", value, size=(16, 16))
    ds = load_dataset("imagefolder", root=tmp_path / "gray", split="train")
    note = ds.conversion_note(size_given=False, channels_given=False)
    assert note == ("imagefolder: the images are gray 16x16; upscaled to 64 px (the data set's default; "
                    "--img-size chooses) and made 3-channel (--channels chooses): using 3x64x64")
    assert ds.conversion_note(size_given=True, channels_given=True) is None
    chosen = load_dataset("imagefolder", root=tmp_path / "gray", split="train", img_size=16, channels=1)
    assert chosen.conversion_note(size_given=False, channels_given=False) is None  # nothing converted
    digits = load_dataset("digits", split="train", limit=4)
    assert "gray 8x8; upscaled to 32 px" in digits.conversion_note(False, False)
    out, _ = run_ok(capsys, "train", "classifier4", "--data", "imagefolder", "--data-root", str(tmp_path / "gray"),
                    "--img-size", "16", "--epochs", "1", "--batch-size", "4", "--out", str(tmp_path / "run"))
    lines = out.splitlines()
    said = next(i for i, line in enumerate(lines) if line.startswith("imagefolder: the images are gray 16x16"))
    assert "made 3-channel" in lines[said] and "upscaled" not in lines[said]  # --img-size was given
    assert said < next(i for i, line in enumerate(lines) if line.startswith("training classifier4"))
