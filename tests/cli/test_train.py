"""`edgesplit train`: it writes a checkpoint and a record, is reproducible, says the conversions it chose, and
refuses missing data roots and wrongly laid-out image folders in one line."""

import pytest

from edgesplit.data import load_dataset
from edgesplit.errors import DataError
from tests.cli.commands import run_error, run_ok
from tests.data.helpers import _png


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
