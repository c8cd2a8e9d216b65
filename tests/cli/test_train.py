"""`edgesplit train`: it writes a checkpoint and a record, is reproducible, says the conversions it chose, and
refuses missing data roots and wrongly laid-out image folders in one line."""

import json

import pytest

from edgesplit.cli.main import main
from edgesplit.data import load_dataset
from edgesplit.errors import DataError
from tests.cli.commands import run, run_error, run_ok
from tests.data.helpers import _png


def test_train_writes_checkpoint_and_record(capsys, tmp_path):
    code, out, _ = run(capsys, "train", "classifier4", "--data", "digits", "--epochs", "1", "--limit", "128",
                       "--out", str(tmp_path), "--quiet")
    assert code == 0 and "test accuracy" in out
    record = json.loads((tmp_path / "train.json").read_text())
    assert record["model"]["name"] == "classifier4" and record["data"]["name"] == "digits"
    assert (tmp_path / "model.pt").is_file()
    code, out, _ = run(capsys, "cuts", "classifier4", "--checkpoint", str(tmp_path / "model.pt"), "--input", "1x32x32")
    assert code == 0


def test_train_is_reproducible_from_the_command_line(capsys, tmp_path):
    import torch

    for run in ("a", "b"):  # noqa: F402 - a run folder here
        assert main(["train", "classifier4", "--epochs", "1", "--limit", "96", "--seed", "5",
                     "--out", str(tmp_path / run), "--quiet"]) == 0
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_missing_and_wrong_format_data_roots(capsys, tmp_path):
    line = run_error(capsys, "train", "resnet20", "--data", "cifar10", "--data-root", str(tmp_path / "nowhere"),
                     "--out", str(tmp_path / "o"))
    assert "nowhere" in line and "does not exist" in line
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("not cifar")
    line = run_error(capsys, "train", "resnet20", "--data", "cifar10", "--data-root", str(tmp_path / "junk"),
                     "--out", str(tmp_path / "o"))
    assert "cifar-10-batches-py" in line


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
