"""The privacy audit of a bundle: train a decoder on what the device sent, score reconstructions of held-out
samples, beside a no-leakage floor, and name the threat model.

`AuditResult` JSON (schema edgesplit.audit v1) and a PNG grid (originals over reconstructions).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import torch

from edgesplit.attacks.metrics import all_metrics, summarise_all
from edgesplit.attacks.pairing import check_features, images_for
from edgesplit.attacks.training import DecoderConfig, reconstruct, train_decoder
from edgesplit.progress import Progress, resolve

SCHEMA = "edgesplit.audit"


def threat_model(train_features, bundle) -> dict:
    data = train_features.meta["data"]
    return {
        "attacker_knowledge": "black-box: observes the wire features of its own images (query access), no weights",
        "attacker_data": {"data": data["name"], "split": data["split"], "samples": int(len(train_features.ids)),
                          "distribution": "in-distribution (same data set, disjoint from the target's training split)"},
        "wire_attacked": {k: bundle.manifest["wire"][k] for k in ("format", "dtype", "scale", "zero_point")},
        "decoder_trained_on": "the exact wire features, dequantized with the manifest's scale/zero-point",
    }


def audit(bundle, train_features, eval_features, config: DecoderConfig | None = None, root: str | None = None,
          progress: Progress | None = None, grid_path: str | Path | None = None) -> dict:
    """Adaptive attack on one bundle: decoder trained on `train_features`, scored on `eval_features`."""
    config = config or DecoderConfig()
    progress = resolve(progress)
    for ff in (train_features, eval_features):
        check_features(ff, bundle)
    train_images = images_for(train_features, bundle, root)
    eval_images = images_for(eval_features, bundle, root)
    trained = train_decoder(train_features.decoded(), train_images, config, progress)
    recon = reconstruct(trained.model, eval_features.decoded(), config)
    originals = torch.from_numpy(eval_images)
    per_image = all_metrics(recon.double(), originals.double(), data_range=1.0)
    floor_image = torch.from_numpy(train_images.mean(0, keepdims=True)).expand_as(originals)
    floor = all_metrics(floor_image.double(), originals.double(), data_range=1.0)
    if grid_path is not None:
        save_grid(eval_images[:8], recon[:8].numpy(), grid_path)
    progress.message(f"audit: PSNR {np.mean(per_image['psnr']):.2f} dB (floor {np.mean(floor['psnr']):.2f} dB)")
    return {
        "schema": SCHEMA, "schema_version": 1,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "bundle": bundle.path.name, "bundle_sha256": bundle.sha256, "model": bundle.manifest["model"]["name"],
        "cut": bundle.manifest["cut"]["name"], "precision": bundle.manifest["precision"],
        "wire": bundle.manifest["wire"]["format"], "attacker": "adaptive",
        "threat_model": threat_model(train_features, bundle),
        "evaluation": {"data": eval_features.meta["data"]["name"], "split": eval_features.meta["data"]["split"],
                       "samples": int(len(eval_features.ids))},
        "metrics": summarise_all(per_image),
        "floor": {"what": "the attacker data's mean image, scored the same way (what no leakage looks like)",
                  "metrics": summarise_all(floor)},
        "metric_conventions": {"data_range": 1.0, "psnr": "per image, then averaged",
                               "ssim_window": per_image["ssim_window"], "ssim_sigma": 1.5,
                               "ms_ssim_scales": per_image["ms_ssim_scales"]},
        "per_image": {k: [float(v) for v in per_image[k]] for k in ("mse", "psnr", "ssim", "ms_ssim", "cosine")},
        "eval_ids": [int(i) for i in eval_features.ids],
        "decoder": trained.summary(),
    }


def save_grid(originals: np.ndarray, reconstructions: np.ndarray, path: str | Path) -> Path:
    """Originals (top row) over reconstructions (bottom row) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 2.8), squeeze=False)
    for row, images, label in ((0, originals, "original"), (1, reconstructions, "reconstruction")):
        for i in range(n):
            img = np.clip(images[i], 0, 1)
            ax = axes[row][i]
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.transpose(1, 2, 0))
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row][0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_result(result: dict, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "audit.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    return path
