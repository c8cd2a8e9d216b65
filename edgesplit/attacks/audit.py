"""The privacy audit of a bundle: train a decoder on what the device sent, score reconstructions of held-out
samples, beside a no-leakage floor, and name the threat model.

`AuditResult` JSON (schema edgesplit.audit v1) and a PNG grid (originals over reconstructions).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import torch

from edgesplit.attacks.metrics import all_metrics, summarise_all
from edgesplit.attacks.pairing import check_features, images_for, pair
from edgesplit.attacks.queryfree import shadow_features, train_shadow_head
from edgesplit.attacks.training import DecoderConfig, reconstruct, train_decoder
from edgesplit.attacks.whitebox import WhiteboxConfig, invert_whitebox
from edgesplit.errors import AttackError
from edgesplit.progress import Progress, resolve

SCHEMA = "edgesplit.audit"


ATTACKS = {
    "adaptive": "black-box: observes the wire features of its own images (query access), no weights",
    "gan": "black-box as adaptive, decoder trained with a GAN prior (decoder + discriminator)",
    "whitebox": "white-box: holds the head's weights; optimises an input to reproduce each observed feature",
    "query-free": "query-free: holds the tail (server side) and its own labelled data; no device queries, no head "
                  "weights; inverts a shadow head trained through the tail",
}


def threat_model(train_features, bundle, attack: str = "adaptive") -> dict:
    data = train_features.meta["data"]
    return {
        "attack": attack,
        "attacker_knowledge": ATTACKS[attack],
        "attacker_data": {"data": data["name"], "split": data["split"], "samples": int(len(train_features.ids)),
                          "distribution": "in-distribution (same data set, disjoint from the target's training split)"},
        "wire_attacked": {k: bundle.manifest["wire"][k] for k in ("format", "dtype", "scale", "zero_point")},
        "decoder_trained_on": "the exact wire features, dequantized with the manifest's scale/zero-point",
    }


def _attack(train_features, eval_features, bundle, config, root, progress, attack="adaptive", checkpoint=None,
            whitebox=None, cache=None):
    """Run one attacker; returns (figures of its training, reconstructions of eval_features, attacker images)."""
    train_images, train_labels = pair(train_features, bundle, root)
    observed = eval_features.decoded()
    if attack in ("adaptive", "gan"):
        if attack == "gan" and config.adversarial_weight == 0:
            config = dataclasses.replace(config, adversarial_weight=0.01)
        trained = train_decoder(train_features.decoded(), train_images, config, progress)
        if cache is not None and attack == "adaptive":
            cache[_cache_key(train_features, config)] = trained  # a later audit's transfer attacker
        return trained.summary(), reconstruct(trained.model, observed, config), train_images
    from edgesplit.export.reference import reference_split

    reference = reference_split(bundle, checkpoint)
    image_shape = tuple(train_images.shape[1:])
    if attack == "whitebox":
        whitebox = whitebox or WhiteboxConfig()
        recon = invert_whitebox(reference.head, observed, image_shape, whitebox, train_images.mean(0), progress)
        return {"whitebox": whitebox.to_dict()}, recon, train_images
    if attack == "query-free":
        from edgesplit.export.reference import model_from_manifest
        from edgesplit.models import split

        shadow = split(model_from_manifest(bundle.manifest, seed=config.seed + 1000),  # its own random init
                       bundle.manifest["cut"]["name"]).head
        shadow_fit = train_shadow_head(shadow, reference.tail, train_images, train_labels, seed=config.seed,
                                       progress=progress)
        trained = train_decoder(shadow_features(shadow, train_images), train_images, config, progress)
        return {"shadow": shadow_fit, **trained.summary()}, reconstruct(trained.model, observed, config), train_images
    raise AttackError(f"unknown attack {attack!r}: use one of {', '.join(ATTACKS)}")


def _cache_key(features, config: DecoderConfig) -> tuple[str, str]:
    """Decoders are deterministic given the features and the config (seed included): key them by both."""
    import json

    return (str(features.meta.get("bundle_sha256")), json.dumps(config.to_dict(), sort_keys=True, default=str))


def check_transfer(source, bundle) -> None:
    """A transfer attacker's features must come from the same model, weights and cut as the audited bundle."""
    m = bundle.manifest
    same = (source.meta.get("model") == m["model"]["name"] and source.meta.get("cut") == m["cut"]["name"]
            and source.meta.get("weights") == (m["model"].get("checkpoint_sha256") or m["model"].get("weights"))
            and list(source.meta.get("output_shape", []))[1:] == list(m["output"]["shape"])[1:])
    if not same:
        raise AttackError(f"transfer features come from {source.meta.get('model')} at {source.meta.get('cut')} "
                          f"(weights {str(source.meta.get('weights'))[:16]}), not from the audited "
                          f"{m['model']['name']} at {m['cut']['name']}: emit them from a bundle of the same "
                          f"model, checkpoint and cut")


def audit(bundle, train_features, eval_features, config: DecoderConfig | None = None, root: str | None = None,
          progress: Progress | None = None, grid_path: str | Path | None = None, transfer_features=None,
          attack: str = "adaptive", checkpoint: str | None = None, whitebox: WhiteboxConfig | None = None,
          decoder_cache: dict | None = None) -> dict:
    """Attack one bundle: reconstruct `eval_features`' inputs; `train_features` are the attacker's samples.

    `attack`: adaptive (decoder trained on the exact wire features), gan, whitebox (needs the head's weights:
    `checkpoint`), query-free (needs the tail). With `transfer_features` (the attack split emitted by another
    bundle of the same model and cut, e.g. the FP32 one), a transfer attacker trained on those is scored on the
    same `eval_features` too: the seed efficient-split-dnn-privacy's setting. `decoder_cache`, a dict the
    caller keeps across audits, holds each adaptive decoder by (features' bundle, config), so the FP32 audit's
    decoder is reused, not retrained, as the transfer attacker of the FP16 and INT8 audits (it is the same
    decoder: training is deterministic for given features and config).
    """
    if attack not in ATTACKS:
        raise AttackError(f"unknown attack {attack!r}: use one of {', '.join(ATTACKS)}")
    config = config or DecoderConfig()
    progress = resolve(progress)
    for ff in (train_features, eval_features):
        check_features(ff, bundle)
    if transfer_features is not None:
        check_transfer(transfer_features, bundle)
    eval_images = images_for(eval_features, bundle, root)
    figures, recon, train_images = _attack(train_features, eval_features, bundle, config, root, progress, attack,
                                           checkpoint, whitebox, decoder_cache)
    originals = torch.from_numpy(eval_images).double()
    per_image = all_metrics(recon.double(), originals, data_range=1.0)
    floor_image = torch.from_numpy(train_images.mean(0, keepdims=True)).double().expand_as(originals)
    floor = all_metrics(floor_image, originals, data_range=1.0)
    if grid_path is not None:
        save_grid(eval_images[:8], recon[:8].numpy(), grid_path)
    progress.message(f"audit: PSNR {np.mean(per_image['psnr']):.2f} dB (floor {np.mean(floor['psnr']):.2f} dB)")
    result = {
        "schema": SCHEMA, "schema_version": 1,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "bundle": bundle.path.name, "bundle_sha256": bundle.sha256, "model": bundle.manifest["model"]["name"],
        "cut": bundle.manifest["cut"]["name"], "precision": bundle.manifest["precision"],
        "wire": bundle.manifest["wire"]["format"], "attacker": attack,
        "threat_model": threat_model(train_features, bundle, attack),
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
        "decoder": figures,
    }
    if transfer_features is not None:
        trained = (decoder_cache or {}).get(_cache_key(transfer_features, config))
        if trained is None:
            t_figures, t_recon, _ = _attack(transfer_features, eval_features, bundle, config, root, progress,
                                            cache=decoder_cache)
        else:  # the same decoder, already trained on these features with this config: reuse it
            t_figures, t_recon = trained.summary(), reconstruct(trained.model, eval_features.decoded(), config)
        result["transfer"] = {
            "what": "decoder trained on another wire format of the same head, applied to this bundle's features",
            "trained_on": {"bundle": transfer_features.meta.get("bundle"),
                           "precision": transfer_features.meta.get("precision"),
                           "wire": transfer_features.meta["wire"]["format"]},
            "metrics": summarise_all(all_metrics(t_recon.double(), originals, data_range=1.0)), "decoder": t_figures,
        }
    return result


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
