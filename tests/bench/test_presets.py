"""A preset runs end to end (train, export, emit, attack every precision) with the audit's attacker."""

import dataclasses
import json

import pytest

from edgesplit.attacks.presets import get_preset
from edgesplit.bench.presets import PresetRun, run_preset
from edgesplit.errors import AttackError


def test_run_preset_trains_exports_emits_and_attacks_every_precision(tmp_path):
    run = PresetRun(cuts=("features.2",), epochs=1, train_epochs=1, attack_limit=64, eval_limit=16)
    summary = run_preset("gpz-classifier4", tmp_path, run)
    assert [r["precision"] for r in summary["rows"]] == ["fp32", "int8"]
    fp32, int8 = summary["rows"]
    assert fp32["payload_bytes"] == 256 * 8 * 8 * 4 and int8["payload_bytes"] == 256 * 8 * 8
    assert "transfer_psnr" in int8 and "transfer_psnr" not in fp32, "INT8 also scores the FP32-trained decoder"
    audit = json.loads((tmp_path / "features.2-int8" / "audit.json").read_text())
    assert audit["preset"] == {"name": "gpz-classifier4", "seed_cut_name": "block 3", "recipe": "audit default"}
    assert set(audit["attackers"]) == {"deconv", "nonoverlap"}, "the seed's decoder beside the default families"
    assert audit["decoder"]["config"]["schedule"] == "restarts", "trained with the audit's recipe, not the seed's"
    assert audit["decoder"]["config"]["decoder_kwargs"] in ({}, {"stem": False, "act": "tanh", "refine": 0})
    assert summary["target"]["trained_here"] and (tmp_path / "target.pt").is_file()
    with pytest.raises(AttackError, match="no cut 'features.9'"):
        run_preset("gpz-classifier4", tmp_path / "x", PresetRun(cuts=("features.9",)))


def test_preset_attacker_is_the_audits_unless_the_seed_recipe_is_asked_for():
    from edgesplit.bench.presets import attacker

    gpz, recon = get_preset("gpz-classifier4"), get_preset("reconstruction-bicubic")
    config, families = attacker(gpz, PresetRun())
    assert families == ("deconv", "nonoverlap") and config.schedule == "restarts" and config.epochs == 150
    assert config.decoder_kwargs == gpz.decoder.decoder_kwargs, "the seed's layout is kept"
    config, families = attacker(recon, PresetRun(epochs=7, budget_s=30))
    assert families == ("deconv", "nonoverlap", "upsample") and (config.epochs, config.budget_s) == (7, 30)
    assert (config.noise_std, config.noise_at_test) == (0.03, True), "the seed's feature noise is its threat setting"
    config, families = attacker(gpz, PresetRun(seed_recipe=True, seed=3))
    assert families == ("deconv",) and config == dataclasses.replace(gpz.decoder, seed=3)
