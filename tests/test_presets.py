"""The seeds' attack settings by name: each preset's model, cuts and decoder agree, and one runs end to end."""

import dataclasses
import json

import pytest
import torch

from edgesplit.attacks.decoders import create_decoder
from edgesplit.attacks.presets import PRESETS, get_preset, list_presets
from edgesplit.bench.presets import PresetRun, run_preset
from edgesplit.errors import AttackError
from edgesplit.models import create_model
from edgesplit.models.cuts import analyse


@pytest.mark.parametrize("name", list_presets())
def test_preset_cuts_give_the_seeds_feature_shapes_and_its_decoder_reaches_the_image(name):
    preset = PRESETS[name]
    model = create_model(preset.model, img_size=preset.img_size, seed=0, **preset.model_kwargs)
    analysis = analyse(model, torch.zeros(1, preset.in_chans, preset.img_size, preset.img_size))
    image = (preset.in_chans, preset.img_size, preset.img_size)
    for cut, _seed_name, shape in preset.cuts:
        assert analysis.resolve(cut).shape == shape, f"{name}: {cut}"
        decoder = create_decoder(preset.decoder.decoder, shape, image, **preset.decoder.decoder_kwargs)
        with torch.no_grad():
            assert decoder.eval()(torch.rand(1, *shape)).shape == (1, *image)


def test_preset_settings_follow_the_seeds():
    assert get_preset("cem-standard").cuts[0][2] == (8, 8, 8) and get_preset("cem-standard").decoder.weight_decay == 1e-4
    recon = get_preset("reconstruction-bicubic").decoder
    assert (recon.noise_mean, recon.noise_std, recon.noise_at_test) == (0.03, 0.03, True)
    assert (recon.schedule, recon.lr_gamma, recon.lr) == ("exponential", 0.93, 2.5e-4)
    gpz = get_preset("gpz-vgg19bn")
    assert [c for c, _, _ in gpz.cuts][0] == "features.12" and gpz.decoder.amsgrad and gpz.decoder.lr == 0.01
    with pytest.raises(AttackError, match="unknown preset 'gpz-classifer4'.*gpz-classifier4"):
        get_preset("gpz-classifer4")


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


def test_preset_command_line(capsys):
    from edgesplit.cli.main import main

    assert main(["audit", "--list-presets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_presets()) and "8x8x8" in out
    assert main(["audit", "--preset", "cem-standard"]) == 2
    assert "needs --out" in capsys.readouterr().err
    assert main(["audit", "--bundle", "b", "--features", "f", "--out", "o", "--decoder-option", "depth"]) == 2
    assert "not KEY=VALUE" in capsys.readouterr().err
