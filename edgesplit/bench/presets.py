"""Running a seed's attack preset end to end: train (or load) the target, export every cut x precision,
emit the attack/test splits and attack them with the preset's decoder (see `edgesplit.attacks.presets`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from edgesplit.atomic import write_text_atomic
from edgesplit.attacks.decoders import AUTO, resolve_families
from edgesplit.attacks.presets import Preset, get_preset
from edgesplit.attacks.training import DecoderConfig
from edgesplit.errors import AttackError, closest
from edgesplit.progress import Progress, resolve


@dataclass(frozen=True)
class PresetRun:
    """How much of a preset to run: the preset's own settings unless overridden (for quick checks)."""

    data: str = "digits"
    root: str | None = None
    checkpoint: str | None = None
    precisions: tuple[str, ...] = ("fp32", "int8")
    cuts: tuple[str, ...] | None = None  # a subset of the preset's cuts
    attack_limit: int | None = None
    eval_limit: int | None = 256
    epochs: int | None = None  # decoder epoch ceiling (None: the recipe's)
    budget_s: float = 0.0  # seconds of decoder training per audit (0: until converged)
    seed_recipe: bool = False  # True: the seed's own decoder training only; False: the audit's default attacker
    train_epochs: int = 5  # target training when no checkpoint is given
    seed: int = 0
    device: str = "cpu"  # where the target and the decoders train (resolved: cpu, cuda)


def run_preset(name: str, out_dir: str | Path, run: PresetRun | None = None,
               progress: Progress | None = None) -> dict:
    """Train (or load) the preset's target, export every cut x precision, emit, attack; return the summary."""
    from edgesplit.attacks.audit import audit, write_result
    from edgesplit.export import ExportConfig, export_bundle
    from edgesplit.runtime.emit import emit_split

    preset, run = get_preset(name), run or PresetRun()
    progress = resolve(progress)
    out = Path(out_dir)
    cuts = _selected_cuts(preset, run.cuts)
    if "fp32" not in run.precisions and len(run.precisions) > 0:
        run = dataclasses.replace(run, precisions=("fp32", *run.precisions))  # the transfer attacker needs it
    checkpoint, target = _target(preset, run, out, progress)
    config, decoders = attacker(preset, run)
    rows = []
    for cut, seed_name, shape in cuts:
        fp32_attack = None
        for precision in run.precisions:
            unit = out / f"{cut}-{precision}"
            export = ExportConfig(preset.model, cut, precision=precision, checkpoint=checkpoint,
                                  calib_data=run.data, calib_root=run.root, seed=run.seed)
            bundle = export_bundle(export, out / "bundles" / f"{cut}-{precision}", force=True, progress=progress)
            got = tuple(bundle.manifest["output"]["shape"][1:])
            if got != shape:
                raise AttackError(f"preset {name}: cut {cut} gives features {got}, the seed's is {shape}")
            attack = emit_split(bundle, run.data, "attack", run.attack_limit, run.root, run.seed, progress=progress)
            evaluation = emit_split(bundle, run.data, "test", run.eval_limit, run.root, run.seed, progress=progress)
            transfer = fp32_attack if precision != "fp32" else None
            result = audit(bundle, attack, evaluation, config, run.root, progress, unit / "grid.png",
                           transfer_features=transfer, decoders=decoders)
            result["preset"] = {"name": name, "seed_cut_name": seed_name,
                                "recipe": "seed" if run.seed_recipe else "audit default"}
            write_result(result, unit)
            if precision == "fp32":
                fp32_attack = attack
            rows.append(_row(cut, seed_name, precision, result, bundle.manifest["wire"]["bytes_per_sample"]))
    summary = {"preset": preset.to_dict(), "target": target, "data": run.data, "rows": rows}
    write_text_atomic(out / "preset.json", json.dumps(summary, indent=2) + "\n")
    return summary


def attacker(preset: Preset, run: PresetRun) -> tuple[DecoderConfig, tuple[str, ...]]:
    """The decoder config and families a preset run trains.

    By default the audit's own attacker: the seed's decoder layout (and feature noise, part of its threat
    setting) trained to convergence with the audit's recipe, beside the default worst-case families, the
    strongest reported. A seed's fixed short schedule (5 epochs for one of them) would understate leakage
    exactly as the old audit did. `seed_recipe` reproduces the seed's training as published instead (for
    comparing with its paper), its decoder only.
    """
    seed = preset.decoder
    if run.seed_recipe:
        config = seed if run.epochs is None else dataclasses.replace(seed, epochs=run.epochs)
        return dataclasses.replace(config, seed=run.seed, budget_s=run.budget_s, device=run.device), (seed.decoder,)
    config = DecoderConfig(decoder=seed.decoder, decoder_kwargs=seed.decoder_kwargs, noise_mean=seed.noise_mean,
                           noise_std=seed.noise_std, noise_at_test=seed.noise_at_test, seed=run.seed,
                           budget_s=run.budget_s, device=run.device)
    if run.epochs is not None:
        config = dataclasses.replace(config, epochs=run.epochs)
    return config, tuple(dict.fromkeys((*resolve_families(AUTO), seed.decoder)))


def _selected_cuts(preset: Preset, wanted) -> tuple:
    if not wanted:
        return preset.cuts
    known = {c[0]: c for c in preset.cuts}
    for cut in wanted:
        if cut not in known:
            raise AttackError(f"preset {preset.name} has no cut {cut!r} ({closest(cut, list(known))})")
    return tuple(known[c] for c in wanted)


def _target(preset: Preset, run: PresetRun, out: Path, progress: Progress) -> tuple[str, dict]:
    """The checkpoint to attack: the user's (checked against the preset), or one trained here."""
    import edgesplit.defenses  # noqa: F401 - registers the 'defense' model option
    from edgesplit.bench.target_model import train_target
    from edgesplit.models import create_model

    if run.checkpoint:
        model = create_model(preset.model, checkpoint=run.checkpoint, img_size=preset.img_size,
                             in_chans=preset.in_chans)
        if model.edgesplit_spec.kwargs.get("bottleneck") != preset.model_kwargs.get("bottleneck"):
            raise AttackError(f"checkpoint {run.checkpoint} is not the preset's {preset.model} "
                              f"(model options {model.edgesplit_spec.kwargs} vs {preset.model_kwargs})")
        return run.checkpoint, {"checkpoint": Path(run.checkpoint).name, "trained_here": False}
    path, accuracy = train_target(preset.model, run.data, run.root, preset.in_chans, preset.img_size,
                                  run.train_epochs, run.seed, out / "target.pt", progress, device=run.device,
                                  **preset.model_kwargs)
    return str(path), {"checkpoint": path.name, "trained_here": True, "data": run.data,
                       "epochs": run.train_epochs, "test_accuracy": accuracy}


def _row(cut: str, seed_name: str, precision: str, result: dict, payload_bytes: int) -> dict:
    m, floor = result["metrics"], result["floor"]["metrics"]
    row = {"cut": cut, "seed_name": seed_name, "precision": precision, "wire": result["wire"],
           "payload_bytes": payload_bytes, "psnr": m["psnr"]["mean"], "ssim": m["ssim"]["mean"],
           "floor_psnr": floor["psnr"]["mean"], "floor_ssim": floor["ssim"]["mean"]}
    if "transfer" in result:
        row["transfer_psnr"] = result["transfer"]["metrics"]["psnr"]["mean"]
        row["transfer_ssim"] = result["transfer"]["metrics"]["ssim"]["mean"]
    return row
