"""Class-per-folder image trees: imagefolder, chestxray's train/test layout, facescrub's nested tree."""

import numpy as np
import pytest
import torch

from edgesplit.data import SPLITS, load_dataset
from edgesplit.errors import DataError
from tests.data.helpers import _png, assert_dataset_contract, split_ids, write_png, write_tree


def test_imagefolder_tree(tmp_path):
    write_tree(tmp_path)
    write_png(tmp_path / "cat" / "wide.PNG", (0, 0, 0), size=(60, 40))
    ids = split_ids("imagefolder", tmp_path)
    assert sum(len(v) for v in ids.values()) == 31
    assert sorted(np.concatenate(list(ids.values())).tolist()) == list(range(31))
    for a, b in (("train", "test"), ("train", "attack"), ("test", "attack")):
        assert not set(ids[a]) & set(ids[b])
    ds = load_dataset("imagefolder", root=tmp_path, split="test", img_size=16)
    assert ds.info.classes == ("cat", "dog", "fox") and ds.info.channels == 3 and ds.info.mean == (0.5,) * 3
    assert set(ds.labels.tolist()) == {0, 1, 2}
    dog = next(i for i in range(len(ds)) if ds[i][1] == 1)
    green = torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1).expand(3, 16, 16)
    assert torch.allclose(ds[dog][0], green, atol=1e-6, rtol=0)
    default = load_dataset("imagefolder", root=tmp_path, split="train")
    assert default.info.img_size == 64
    cat = next(i for i in range(len(default)) if default[i][1] == 0 and "wide" not in default.files[i])
    assert default[cat][0][:, 5, 5].tolist() == pytest.approx([1.0, 0.0, 128 / 255], abs=1e-6)
    assert_dataset_contract(ds)
    gray = load_dataset("imagefolder", root=tmp_path, split="attack", grayscale="true", img_size=8)
    assert gray.info.channels == 1 and gray.info.mean == (0.5,)
    assert_dataset_contract(gray)


def test_imagefolder_corrupt_and_empty(tmp_path):
    write_tree(tmp_path / "t", per_class=3)
    (tmp_path / "t" / "dog" / "zz_broken.jpg").write_bytes(b"this is not a jpeg")
    holders = [load_dataset("imagefolder", root=tmp_path / "t", split=s, img_size=8) for s in SPLITS]
    ds = next(d for d in holders if any(f.endswith("zz_broken.jpg") for f in d.files))
    broken = [i for i, f in enumerate(ds.files) if f.endswith("zz_broken.jpg")]
    with pytest.raises(DataError, match="zz_broken.jpg"):
        ds[broken[0]]
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match="no images") as err:
        load_dataset("imagefolder", root=tmp_path / "empty")
    assert "one sub-folder of images per class" in str(err.value)


def test_chestxray_train_test_layout(tmp_path):
    root = tmp_path / "chest_xray"
    for part, n in (("train", 10), ("test", 4), ("val", 2)):
        for cls, shade in (("NORMAL", 40), ("PNEUMONIA", 200)):
            for i in range(n):
                write_png(root / part / cls / f"{part}{i}.jpeg", shade, size=(50, 70), mode="L")
    test = load_dataset("chestxray", root=root, split="test")
    assert len(test) == 8 and test.info.classes == ("NORMAL", "PNEUMONIA") and test.info.channels == 1
    assert sorted(test.ids.tolist()) == list(range(8))
    assert all("/test/" in f for f in test.files)
    assert test[0][0].shape == (1, 64, 64)
    ids = split_ids("chestxray", tmp_path)  # root/chest_xray is found too
    assert len(ids["train"]) + len(ids["attack"]) == 24 and len(ids["attack"]) in (4, 5)
    assert not set(ids["train"]) & set(ids["attack"])
    attack = load_dataset("chestxray", root=root, split="attack", channels=3, img_size=16)
    assert attack.info.mean == (0.5,) * 3 and set(attack.labels.tolist()) == {0, 1}
    shade = {0: 40 / 255, 1: 200 / 255}
    assert all(float(attack[i][0].mean()) == pytest.approx(shade[attack[i][1]], abs=1e-6)
               for i in range(len(attack)))
    assert_dataset_contract(attack)


def test_facescrub_nested_tree(tmp_path):
    for group, person in (("actors", "Aaron_Eckhart"), ("actors", "Adam_Brody"), ("actresses", "Alyssa_Milano")):
        for i in range(5):
            write_png(tmp_path / group / "faces" / person / f"{person}_{i}.jpg", (i * 40, 0, 0))
    ds = load_dataset("facescrub", root=tmp_path, split="train", img_size=32)
    assert ds.info.classes == ("actors/faces/Aaron_Eckhart", "actors/faces/Adam_Brody",
                               "actresses/faces/Alyssa_Milano")
    assert set(ds.labels.tolist()) == {0, 1, 2}
    ids = split_ids("facescrub", tmp_path)
    assert sum(len(v) for v in ids.values()) == 15 and all(len(v) for v in ids.values())
    assert_dataset_contract(ds)


def test_a_stray_image_beside_the_class_folders_is_not_refused(tmp_path):
    for i in range(6):
        _png(tmp_path / "pets" / "cats" / f"{i}.png", 20 * i)
        _png(tmp_path / "pets" / "dogs" / f"{i}.png", 200)
    _png(tmp_path / "pets" / "preview.png")
    data = load_dataset("imagefolder", root=tmp_path / "pets", split="train")
    assert data.info.num_classes == 2
