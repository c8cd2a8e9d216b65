"""The privacy audit of a bundle: train a decoder on what the device sent, score reconstructions of held-out
samples, beside a no-leakage floor, and name the threat model.

`AuditResult` JSON (schema edgesplit.audit v2) and a PNG grid (originals over reconstructions).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import torch

from edgesplit.atomic import atomic_path, write_text_atomic
from edgesplit.attacks.decoders import AUTO, resolve_families
from edgesplit.attacks.metrics import all_metrics, summarise_all
from edgesplit.attacks.pairing import check_features, images_for, pair
from edgesplit.attacks.queryfree import shadow_features, train_shadow_head
from edgesplit.attacks.recognisability import recognition, reid_context, reid_rates
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


SHIPPED_ONLY = ("only the shipped ONNX file: it can run the deployed model on its own images (as the transfer "
                "attacker does), but has no PyTorch source, no training checkpoint and no training data; attacks "
                "that need the PyTorch model (whitebox, query-free) do not apply")


def threat_model(train_features, bundle, attack: str = "adaptive") -> dict:
    data = train_features.meta["data"]
    shipped = (bundle.manifest["model"].get("graph") or {}) if bundle.manifest["model"].get("spec") is None else {}
    distribution = ("in-distribution (same data set; whether it overlaps the shipped model's own training data is "
                    "not known)" if shipped.get("file") else
                    "in-distribution (same data set, disjoint from the target's training split)")
    record = {
        "attack": attack,
        "attacker_knowledge": ATTACKS[attack],
        "attacker_data": {"data": data["name"], "split": data["split"], "samples": int(len(train_features.ids)),
                          "distribution": distribution},
        "wire_attacked": {k: bundle.manifest["wire"][k] for k in ("format", "dtype", "scale", "zero_point")},
        "decoder_trained_on": "the exact wire features, dequantized with the manifest's scale/zero-point",
    }
    if shipped.get("file"):  # a head cut from a shipped ONNX file: the attacker holds that file and nothing more
        record["attacker_holds"] = {"what": SHIPPED_ONLY, "file": shipped["file"], "sha256": shipped["sha256"]}
    return record


def _family_config(config: DecoderConfig, family: str, budget_left: float | None) -> DecoderConfig:
    """The audit's config for one decoder family: the user's decoder options apply to their decoder only."""
    kwargs = config.decoder_kwargs if family == config.decoder else {}
    budget = config.budget_s if budget_left is None else max(budget_left, 1e-9)
    return dataclasses.replace(config, decoder=family, decoder_kwargs=kwargs, budget_s=budget)


def _adaptive(train_features, z, train_images, observed, config, families, progress, cache, start_features):
    """Train every decoder family to convergence (within the audit's budget); {family: (trained, recon)}.

    With `start_features` and a `cache` holding the decoders trained on them (another wire of the same head,
    e.g. its FP32 one), each family starts from that decoder and is fine-tuned on these features: the same
    attacker, found in a fraction of the time.
    """
    start, out, skipped = time.perf_counter(), {}, []
    starts = {f: cache.get(_cache_key(start_features, _family_config(config, f, None)))
              for f in families} if start_features is not None and cache is not None else {}
    if starts and all(starts.values()) and len(families) > 1:
        # Starting from the other wire's decoders: a family that trailed the best there by more than
        # BEHIND_DB cannot plausibly win after fine-tuning on a near-identical wire; only the rest are retrained.
        best = min(t.summary()["best_val_mse"] for t in starts.values())
        behind = [f for f, t in starts.items() if t.summary()["best_val_mse"] > best * 10 ** (BEHIND_DB / 10)]
        skipped += [f"{f} (behind by over {BEHIND_DB:g} dB on the {start_features.meta['wire']['format']} wire)"
                    for f in behind]
        families = tuple(f for f in families if f not in behind)
    for i, family in enumerate(families):
        left = config.budget_s - (time.perf_counter() - start) if config.budget_s else None
        if left is not None and left <= 0 and out:  # the first family always trains (one epoch at least)
            skipped.append(f"{family} (time budget spent)")
            continue
        share = None if left is None else left / (len(families) - i)  # what is left, shared by those to come
        fam_config = _family_config(config, family, share)
        key = _cache_key(train_features, fam_config)
        trained = (cache or {}).get(key)
        if trained is None:
            trained = train_decoder(z, train_images, fam_config, progress, init=starts.get(family))
            if cache is not None:
                cache[key] = trained  # a later audit's transfer attacker or starting point
        out[family] = (trained, reconstruct(trained.model, observed, fam_config))
    return out, skipped


def _other_attack(attack, train_images, train_labels, observed, bundle, config, progress, checkpoint, whitebox):
    """The white-box and query-free attackers, on the decoders' device: (figures, reconstructions)."""
    from edgesplit.runners.pytorch import reference_split

    reference = reference_split(bundle, checkpoint)
    image_shape = tuple(train_images.shape[1:])
    if attack == "whitebox":
        whitebox = dataclasses.replace(whitebox or WhiteboxConfig(), device=config.device)
        recon = invert_whitebox(reference.head, observed, image_shape, whitebox, train_images.mean(0), progress)
        return {"whitebox": whitebox.to_dict()}, recon
    from edgesplit.models import split
    from edgesplit.runners.pytorch import model_from_manifest

    shadow = split(model_from_manifest(bundle.manifest, seed=config.seed + 1000),  # its own random init
                   bundle.manifest["cut"]["name"]).head
    shadow_fit = train_shadow_head(shadow, reference.tail, train_images, train_labels, seed=config.seed,
                                   progress=progress, device=config.device)
    trained = train_decoder(shadow_features(shadow, train_images, device=config.device), train_images, config,
                            progress)
    return {"shadow": shadow_fit, **trained.summary()}, reconstruct(trained.model, observed, config)


def _cache_key(features, config: DecoderConfig) -> tuple[str, str]:
    """Decoders are deterministic given the features and the config (seed included): key them by both (not by
    the time budget, which only says when to stop)."""
    recipe = {k: v for k, v in config.to_dict().items() if k != "budget_s"}
    return (str(features.meta.get("bundle_sha256")), json.dumps(recipe, sort_keys=True, default=str))


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


BEHIND_DB = 1.0  # see _adaptive
HIGHER_LEAKS = {"psnr": True, "ssim": True, "ms_ssim": True, "cosine": True, "mse": False}
CURVE_FRACTIONS = (0.25, 0.5)
STILL_RISING_DB = 0.5  # PSNR gained from 50 % to 100 % of the attacker's data that flags a lower bound


def _strongest(scored: dict) -> dict:
    """Per metric, the family whose reconstructions leak most (highest mean; lowest for MSE)."""
    out = {}
    for metric, higher in HIGHER_LEAKS.items():
        pick = max if higher else min
        out[metric] = pick(scored, key=lambda f: scored[f]["summary"][metric]["mean"])
    for metric, path in (("reid_top1", ("reid", "top1")), ("recognition", ("recognition", "reconstruction"))):
        if all(path[0] in v for v in scored.values()):
            out[metric] = max(scored, key=lambda f: scored[f][path[0]][path[1]])
    return out


def _learning_curve(family, trained, z, train_images, observed, originals, full_psnr, budget_s, progress) -> dict:
    """PSNR of the strongest family trained on 25 % and 50 % of the attacker's data, beside 100 % (with a time
    budget, the points share the audit's budget once more)."""
    config = dataclasses.replace(trained.config, budget_s=budget_s / len(CURVE_FRACTIONS) if budget_s else 0.0)
    points = []
    for fraction in CURVE_FRACTIONS:
        part = train_decoder(z, train_images, config, progress, fraction=fraction)
        recon = reconstruct(part.model, observed, config)
        m = all_metrics(recon.double(), originals, data_range=1.0)
        points.append({"fraction": fraction, "samples": part.samples, "psnr": float(np.mean(m["psnr"])),
                       "ssim": float(np.mean(m["ssim"])), "epochs_run": len(part.history),
                       "converged": part.converged})
    points.append({"fraction": 1.0, "samples": trained.refit_samples or trained.samples, "psnr": full_psnr["psnr"],
                   "ssim": full_psnr["ssim"], "epochs_run": len(trained.history), "converged": trained.converged})
    gain = points[-1]["psnr"] - points[-2]["psnr"]
    return {"decoder": family, "points": points, "gain_last_doubling_db": gain,
            "still_rising": bool(gain > STILL_RISING_DB),
            "note": (f"PSNR still rose {gain:.2f} dB from 50 % to 100 % of the attacker's data: more attacker data "
                     f"would rebuild more; these figures are a lower bound" if gain > STILL_RISING_DB else
                     f"PSNR rose {gain:.2f} dB from 50 % to 100 % of the attacker's data (saturating)")}


def _recognisers(train_images, train_labels, train_features, cache, device: str) -> tuple:
    """The re-identification encoder and the evaluation classifier (trained on `device`), fitted once per
    attacker data set."""
    data = train_features.meta["data"]
    key = ("recognisers", data["name"], data["split"], data["seed"], tuple(train_images.shape),
           hash(np.asarray(train_features.ids).tobytes()), device)
    if cache is not None and key in cache:
        return cache[key]
    from edgesplit.attacks.recognisability import Eigenspace, train_evaluator

    num_classes = int(max(2, int(np.max(train_labels)) + 1))
    evaluator = train_evaluator(train_images, train_labels, num_classes, seed=data["seed"], device=device)
    made = (Eigenspace(train_images), *evaluator)
    if cache is not None:
        cache[key] = made
    return made


def audit(bundle, train_features, eval_features, config: DecoderConfig | None = None, root: str | None = None,
          progress: Progress | None = None, grid_path: str | Path | None = None, transfer_features=None,
          attack: str = "adaptive", checkpoint: str | None = None, whitebox: WhiteboxConfig | None = None,
          decoder_cache: dict | None = None, decoders=None, learning_curve: bool = True,
          recognisability: bool = True, start_features=None) -> dict:
    """Attack one bundle: reconstruct `eval_features`' inputs; `train_features` are the attacker's samples.

    `attack`: adaptive (decoders trained on the exact wire features), gan, whitebox (needs the head's weights:
    `checkpoint`), query-free (needs the tail). The adaptive attack trains every family in `decoders` ("auto":
    the default worst case; "all"; or names; default: `config.decoder`, or "auto" without a config) to
    convergence and reports, per metric, the strongest, naming it. `learning_curve` retrains the strongest on
    25 % and 50 % of the attacker's data and flags a cut whose leakage still rises; `recognisability` scores
    re-identification among the held-out images and recognition by an independent evaluation classifier.

    With `transfer_features` (the attack split emitted by another bundle of the same model and cut, e.g. the
    FP32 one), a transfer attacker trained on those is scored on the same `eval_features` too: the seed
    efficient-split-dnn-privacy's setting. `decoder_cache`, a dict the caller keeps across audits, holds each
    trained decoder by (features' bundle, config) and the recognisers by attacker data: the FP32 audit's
    decoders become the transfer attackers, and the decoders trained on `start_features` (default: the
    transfer features; the sweep passes the previous precision's) the starting points of this audit.
    """
    if attack not in ATTACKS:
        raise AttackError(f"unknown attack {attack!r}: use one of {', '.join(ATTACKS)}")
    if decoders is None:
        decoders = config.decoder if config is not None else AUTO
    config = config or DecoderConfig()
    progress = resolve(progress)
    for ff in (train_features, eval_features):
        check_features(ff, bundle)
    if start_features is None:
        start_features = transfer_features
    for other in (transfer_features, start_features):
        if other is not None:
            check_transfer(other, bundle)
    eval_images, eval_labels = pair(eval_features, bundle, root)
    train_images, train_labels = pair(train_features, bundle, root)
    z, observed = train_features.decoded(), eval_features.decoded()
    originals = torch.from_numpy(eval_images).double()
    floor_image = torch.from_numpy(train_images.mean(0, keepdims=True)).double()
    floor = all_metrics(floor_image.expand_as(originals), originals, data_range=1.0)
    skipped: list[str] = []
    trained: dict = {}
    if attack in ("adaptive", "gan"):
        if attack == "gan" and config.adversarial_weight == 0:
            config = dataclasses.replace(config, adversarial_weight=0.01)
        families = resolve_families(decoders) if attack == "adaptive" else (config.decoder,)
        trained, skipped = _adaptive(train_features, z, train_images, observed, config, families, progress,
                                     decoder_cache, start_features)
        runs = {f: (t.summary(), recon) for f, (t, recon) in trained.items()}
    else:
        runs = {attack: _other_attack(attack, train_images, train_labels, observed, bundle, config, progress,
                                      checkpoint, whitebox)}
    recognisers = (_recognisers(train_images, train_labels, train_features, decoder_cache, config.device)
                   if recognisability else None)
    scored = {name: _score(figures, recon, originals, eval_labels, floor_image, recognisers)
              for name, (figures, recon) in runs.items()}
    strongest = _strongest(scored)
    lead = scored[strongest["psnr"]]
    if grid_path is not None:
        save_grid(eval_images[:8], lead["recon"][:8].numpy(), grid_path)
    progress.message(f"audit: PSNR {lead['summary']['psnr']['mean']:.2f} dB by {strongest['psnr']} "
                     f"(floor {np.mean(floor['psnr']):.2f} dB)")
    per_image = lead["per_image"]
    result = {
        "schema": SCHEMA, "schema_version": 2,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "bundle": bundle.path.name, "bundle_sha256": bundle.sha256, "model": bundle.manifest["model"]["name"],
        "cut": bundle.manifest["cut"]["name"], "precision": bundle.manifest["precision"],
        "wire": bundle.manifest["wire"]["format"], "attacker": attack,
        "threat_model": threat_model(train_features, bundle, attack),
        "evaluation": {"data": eval_features.meta["data"]["name"], "split": eval_features.meta["data"]["split"],
                       "samples": int(len(eval_features.ids))},
        "metrics": {m: scored[strongest[m]]["summary"][m] for m in HIGHER_LEAKS},
        "strongest": strongest,
        "attackers": {name: {"decoder": v["decoder"], "metrics": v["summary"],
                             **({"reid": v["reid"], "recognition": v["recognition"]["reconstruction"]}
                                if "reid" in v else {})} for name, v in scored.items()},
        "skipped": skipped,
        "floor": {"what": "the attacker data's mean image, scored the same way (what no leakage looks like)",
                  "metrics": summarise_all(floor)},
        "metric_conventions": {"data_range": 1.0, "psnr": "per image, then averaged",
                               "ssim_window": per_image["ssim_window"], "ssim_sigma": 1.5,
                               "ms_ssim_scales": per_image["ms_ssim_scales"],
                               "worst_case_over_attackers": "each metric from the attacker that scores it highest "
                                                            "(lowest for MSE) on the evaluation images"},
        "per_image": {k: [float(v) for v in per_image[k]] for k in ("mse", "psnr", "ssim", "ms_ssim", "cosine")},
        "eval_ids": [int(i) for i in eval_features.ids],
        "decoder": lead["decoder"],
    }
    if recognisers is not None:
        best_reid, best_rec = scored[strongest["reid_top1"]], scored[strongest["recognition"]]
        result["reidentification"] = {**reid_context(originals, recognisers[0], floor_image),
                                      "decoder": strongest["reid_top1"], "reconstruction": best_reid["reid"],
                                      "top1": best_reid["reid"]["top1"], "top5": best_reid["reid"]["top5"]}
        result["recognition"] = {**best_rec["recognition"], "decoder": strongest["recognition"]}
    if learning_curve and trained:
        best = trained[strongest["psnr"]][0]
        full = {"psnr": lead["summary"]["psnr"]["mean"], "ssim": lead["summary"]["ssim"]["mean"]}
        result["learning_curve"] = _learning_curve(strongest["psnr"], best, z, train_images,
                                                   observed, originals, full, config.budget_s, progress)
    if transfer_features is not None:
        result["transfer"] = _transfer(transfer_features, eval_features, bundle, config, strongest["psnr"],
                                       originals, root, progress, decoder_cache)
    return result


def _score(figures, recon, originals, labels, floor_image, recognisers) -> dict:
    """Every metric of one attacker's reconstructions (and, with recognisers, its re-id and recognition)."""
    per_image = all_metrics(recon.double(), originals, data_range=1.0)
    out = {"decoder": figures, "summary": summarise_all(per_image), "per_image": per_image, "recon": recon}
    if recognisers is not None:
        encoder, evaluator, info = recognisers
        out["reid"] = reid_rates(recon, originals, encoder)
        out["recognition"] = recognition(recon, originals, labels, evaluator, floor_image, info)
    return out


def _transfer(transfer_features, eval_features, bundle, config, family, originals, root, progress, cache) -> dict:
    """The decoder trained on another wire of the same head (same family as the strongest), on these features."""
    fam_config = _family_config(config, family, None)
    key = _cache_key(transfer_features, fam_config)
    trained = (cache or {}).get(key)
    if trained is None:
        trained = train_decoder(transfer_features.decoded(), images_for(transfer_features, bundle, root), fam_config,
                                progress)
        if cache is not None:
            cache[key] = trained
    recon = reconstruct(trained.model, eval_features.decoded(), fam_config)
    return {"what": "decoder trained on another wire format of the same head, applied to this bundle's features",
            "trained_on": {"bundle": transfer_features.meta.get("bundle"),
                           "precision": transfer_features.meta.get("precision"),
                           "wire": transfer_features.meta["wire"]["format"]},
            "metrics": summarise_all(all_metrics(recon.double(), originals, data_range=1.0)),
            "decoder": trained.summary()}


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
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def write_result(result: dict, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(out / "audit.json", json.dumps(result, indent=2) + "\n")
