"""Pair a FeatureFile's rows with the attacker's own copies of the images, by sample id."""

from __future__ import annotations

import numpy as np

from edgesplit.errors import AttackError


def images_for(features, bundle, root: str | None = None) -> np.ndarray:
    """Images (N x C x H x W in [0, 1], the bundle's input shape) for the FeatureFile's ids, in its row order."""
    return pair(features, bundle, root)[0]


def pair(features, bundle, root: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the attacker's own copies of the FeatureFile's samples, in its row order."""
    from edgesplit.data.for_input import load_split_for

    data = features.meta["data"]
    ds = load_split_for(bundle.input["shape"][1:], data["name"], root=root, split=data["split"], seed=data["seed"],
                        **data.get("options", {}))
    position = {int(i): k for k, i in enumerate(ds.ids)}
    missing = [int(i) for i in features.ids if int(i) not in position]
    if missing:
        raise AttackError(f"{len(missing)} feature ids (e.g. {missing[:3]}) are not in {data['name']}/{data['split']} "
                          f"with seed {data['seed']}: the FeatureFile does not match this data split")
    rows = [position[int(i)] for i in features.ids]
    if len(rows) * 2 >= len(ds):  # most of the split: its batched conversion is the faster way
        images, labels = ds.tensors()
        return images.numpy()[rows], labels.numpy()[rows]
    # a few samples of a large split (e.g. 256 test images of CelebA): decode only those
    pairs = [ds[k] for k in rows]
    return (np.stack([img.numpy() for img, _ in pairs]).astype(np.float32),
            np.array([label for _, label in pairs], dtype=np.int64))


def check_features(features, bundle) -> None:
    """The features must come from this very bundle and be finite once decoded."""
    if features.meta.get("bundle_sha256") != bundle.sha256:
        raise AttackError(f"the features were emitted by bundle {features.meta.get('bundle')} "
                          f"({str(features.meta.get('bundle_sha256'))[:12]}...), not by {bundle.path.name} "
                          f"({bundle.sha256[:12]}...): emit them from this bundle")
    if not np.isfinite(features.decoded()).all():
        raise AttackError("the decoded features contain NaN or Inf: re-emit them from a verified bundle")
