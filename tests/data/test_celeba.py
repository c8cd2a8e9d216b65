"""CelebA: identity-disjoint splits from its partition file, the centre crop, and no annotations."""

import numpy as np
import pytest
from PIL import Image

from edgesplit.data import load_dataset
from edgesplit.errors import DataError
from tests.data.helpers import assert_dataset_contract, split_ids


def write_celeba(root, n: int = 12):
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        image = np.zeros((218, 178, 3), dtype=np.uint8)
        top, left = (218 - 108) // 2, (178 - 108) // 2
        image[top:top + 108, left:left + 108] = 255
        Image.fromarray(image).save(folder / f"{i:06d}.png")  # lossless, so the crop is checked exactly
    return [f"{i:06d}.png" for i in range(1, n + 1)]


def test_celeba_identity_partition_and_crop(tmp_path):
    names = write_celeba(tmp_path)
    identities = [2935, 17, 2935, 17, 99, 99, 2935, 17, 99, 2935, 17, 99]
    (tmp_path / "identity_CelebA.txt").write_text("".join(f"{n} {k}\n" for n, k in zip(names, identities,
                                                                                        strict=True)))
    partition = [0, 0, 0, 0, 0, 1, 1, 0, 0, 2, 2, 2]
    (tmp_path / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, partition,
                                                                                          strict=True)))
    test = load_dataset("celeba", root=tmp_path, split="test")
    assert test.info.classes == ("17", "99", "2935") and test.info.num_classes == 3
    assert len(test) == 3 and sorted(test.labels.tolist()) == [0, 1, 2]
    assert [f[-10:] for f in test.files] == ["000010.png", "000011.png", "000012.png"]
    assert test.info.img_size == 64 and float(test[0][0].min()) == pytest.approx(1.0, abs=1e-6)
    ids = split_ids("celeba", tmp_path)
    assert len(ids["train"]) + len(ids["attack"]) == 9 and not set(ids["train"]) & set(ids["attack"])
    uncropped = load_dataset("celeba", root=tmp_path, split="test", crop=178, img_size=32)
    assert float(uncropped[0][0].min()) == 0.0
    assert_dataset_contract(uncropped)


def test_celeba_without_annotations(tmp_path):
    write_celeba(tmp_path, n=10)
    ds = load_dataset("celeba", root=tmp_path, split="train", img_size=16)
    assert ds.info.num_classes == 1 and set(ds.labels.tolist()) == {0}
    assert sum(len(v) for v in split_ids("celeba", tmp_path).values()) == 10
    (tmp_path / "identity_CelebA.txt").write_text("000001.png 5\n")
    with pytest.raises(DataError, match="identity_CelebA.txt has no entry"):
        load_dataset("celeba", root=tmp_path)
    with pytest.raises(DataError, match="img_align_celeba"):
        load_dataset("celeba", root=tmp_path / "img_align_celeba")
