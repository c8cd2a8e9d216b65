"""The embedded faces: scikit-image's LFW subset in disjoint, stratified splits."""

import numpy as np
import torch

from edgesplit.data import SPLITS, load_dataset
from tests.data.helpers import assert_dataset_contract, split_ids


def test_faces_are_scikit_images_lfw_subset_in_disjoint_stratified_splits():
    from skimage.data import lfw_subset

    ids = split_ids("faces")
    assert {s: len(v) for s, v in ids.items()} == {"train": 120, "test": 40, "attack": 40}
    assert sorted(np.concatenate(list(ids.values())).tolist()) == list(range(200))
    pool = lfw_subset()
    for s in SPLITS:
        ds = load_dataset("faces", split=s, img_size=25)
        assert (ds.labels == (ds.ids >= 100)).all(), "the first 100 crops are faces"
        assert np.bincount(ds.labels).tolist() == [len(ds) // 2] * 2
        image, _ = ds[0]
        assert torch.allclose(image[0], torch.from_numpy(pool[ds.ids[0]]).float(), atol=0.5 / 255 + 1e-6)
        assert_dataset_contract(ds)
    assert load_dataset("faces", split="test").info.img_size == 32 and load_dataset("faces").info.classes == (
        "face", "non-face")
