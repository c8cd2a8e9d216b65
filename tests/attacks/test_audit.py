"""The audit: the attack beats the floor and names its threat model, reports the worst case over decoder
families, scores a transfer attacker, runs the white-box, GAN and query-free attacks, and refuses features of
another bundle or split."""

import json

import numpy as np
import pytest
from PIL import Image

from edgesplit.attacks import DecoderConfig
from edgesplit.attacks.audit import audit
from edgesplit.errors import AttackError
from edgesplit.export import ExportConfig, export_bundle
from edgesplit.runtime.emit import emit_split


def test_audit_beats_the_floor_and_names_its_threat_model(int8_bundle, tmp_path):
    train = emit_split(int8_bundle.path, "digits", "attack", limit=160)
    evaluation = emit_split(int8_bundle.path, "digits", "test", limit=64)
    result = audit(int8_bundle, train, evaluation, DecoderConfig(decoder="deconv", epochs=8),
                   grid_path=tmp_path / "grid.png")
    m, floor = result["metrics"], result["floor"]["metrics"]
    d = result["decoder"]
    assert d["epochs_run"] >= 1 and d["stopped_by"] in ("patience", "epochs") and d["final_val_mse"] > 0
    assert d["converged"] == (d["stopped_by"] == "patience") and d["final_train_mse"] > 0 and d["batch_size"] == 8
    reid, rec, curve = result["reidentification"], result["recognition"], result["learning_curve"]
    assert reid["top1"] > 10 * reid["chance"]["top1"] and reid["floor"]["top1"] <= 2 * reid["chance"]["top1"]
    assert rec["originals"] > 0.5 and rec["reconstruction"] > rec["floor"]
    assert rec["evaluator"]["device"] == "cpu" and d["config"]["device"] == "cpu", "where each attacker trained"
    assert [p["fraction"] for p in curve["points"]] == [0.25, 0.5, 1.0] and isinstance(curve["still_rising"], bool)
    assert curve["points"][-1]["psnr"] == m["psnr"]["mean"] and curve["points"][0]["samples"] < len(train.ids)
    assert m["psnr"]["mean"] > floor["psnr"]["mean"] + 5, "a shallow INT8 cut leaks: far above the floor"
    assert m["ssim"]["mean"] > floor["ssim"]["mean"]
    assert len(result["per_image"]["psnr"]) == 64 and result["eval_ids"] == [int(i) for i in evaluation.ids]
    assert int8_bundle.manifest["export"]["checkpoint"] == "c4.pt", "the file name, never the machine path"
    tm = result["threat_model"]
    assert tm["attacker_data"]["split"] == "attack" and tm["attacker_data"]["samples"] == len(train.ids)
    assert tm["wire_attacked"]["format"] == "int8" and tm["wire_attacked"]["scale"] > 0
    assert result["metric_conventions"]["psnr"] == "per image, then averaged"
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size[0] > 100
    json.dumps(result)


def test_audit_reports_the_worst_case_over_decoder_families_and_names_it(int8_bundle, checkpoint, tmp_path):
    train = emit_split(int8_bundle.path, "digits", "attack", limit=96)
    evaluation = emit_split(int8_bundle.path, "digits", "test", limit=32)
    result = audit(int8_bundle, train, evaluation, DecoderConfig(epochs=3), decoders="auto",
                   learning_curve=False, recognisability=False)
    attackers, strongest = result["attackers"], result["strongest"]
    assert set(attackers) == {"deconv", "nonoverlap"}
    for metric in ("psnr", "ssim", "ms_ssim", "cosine"):
        best = max(a["metrics"][metric]["mean"] for a in attackers.values())
        assert result["metrics"][metric]["mean"] == best
        assert attackers[strongest[metric]]["metrics"][metric]["mean"] == best, "the winner is named"
    assert result["metrics"]["mse"]["mean"] == min(a["metrics"]["mse"]["mean"] for a in attackers.values())
    # the FP32 wire's decoders are the starting points of the same head's other wires
    fp32 = export_bundle(ExportConfig("classifier4", "features.0", precision="fp32", checkpoint=checkpoint,
                                      eval_size=16), tmp_path / "fp32")
    fp32_train, cache = emit_split(fp32.path, "digits", "attack", limit=96), {}
    audit(fp32, fp32_train, emit_split(fp32.path, "digits", "test", limit=32), DecoderConfig(epochs=3),
          decoders="auto", decoder_cache=cache, learning_curve=False, recognisability=False)
    warm = audit(int8_bundle, train, evaluation, DecoderConfig(epochs=3), decoders="auto",
                 decoder_cache=cache, learning_curve=False, recognisability=False, transfer_features=fp32_train)
    assert all(a["decoder"]["warm_start"] == name for name, a in warm["attackers"].items())
    budgeted = audit(int8_bundle, train, evaluation, DecoderConfig(epochs=50, budget_s=1e-6), decoders="auto",
                     learning_curve=False, recognisability=False)
    assert budgeted["skipped"] == ["nonoverlap (time budget spent)"], "a spent budget skips the families not yet started"
    assert budgeted["attackers"]["deconv"]["decoder"]["stopped_by"] == "budget"


def test_audit_refuses_features_of_another_bundle_or_split(int8_bundle, tmp_path):
    other = export_bundle(ExportConfig("classifier4", "features.1", precision="int8", calib_size=32, eval_size=16),
                          tmp_path / "other")
    train = emit_split(other.path, "digits", "attack", limit=40)
    evaluation = emit_split(int8_bundle.path, "digits", "test", limit=8)
    with pytest.raises(AttackError, match="emitted by bundle other .*not by bundle"):
        audit(int8_bundle, train, evaluation)
    mine = emit_split(int8_bundle.path, "digits", "attack", limit=40)
    mine.meta["data"]["seed"] = 7  # ids of seed 0 do not belong to seed 7's attack split
    with pytest.raises(AttackError, match="not in digits/attack with seed 7"):
        audit(int8_bundle, mine, evaluation)


def test_transfer_attacker_is_scored_beside_the_adaptive_one(int8_bundle, checkpoint, tmp_path):
    ckpt = checkpoint
    fp32 = export_bundle(ExportConfig("classifier4", "features.0", precision="fp32", checkpoint=ckpt, eval_size=16),
                         tmp_path / "fp32")
    source = emit_split(fp32.path, "digits", "attack")
    train = emit_split(int8_bundle.path, "digits", "attack")
    evaluation = emit_split(int8_bundle.path, "digits", "test", limit=48)
    result = audit(int8_bundle, train, evaluation, DecoderConfig(decoder="deconv", epochs=4), transfer_features=source,
                   learning_curve=False, recognisability=False)
    t = result["transfer"]
    assert t["trained_on"]["wire"] == "fp32" and t["metrics"]["psnr"]["n"] == 48
    assert np.isfinite(t["metrics"]["psnr"]["mean"])
    other = export_bundle(ExportConfig("classifier4", "features.1", precision="fp32", checkpoint=ckpt, eval_size=16),
                          tmp_path / "other-cut")
    with pytest.raises(AttackError, match="transfer features come from classifier4 at features.1"):
        audit(int8_bundle, train, evaluation, transfer_features=emit_split(other.path, "digits", "attack", limit=40))


def test_whitebox_gan_and_query_free_attacks_run_and_name_their_threat(int8_bundle, checkpoint):
    from edgesplit.attacks.whitebox import WhiteboxConfig

    ckpt = checkpoint
    train = emit_split(int8_bundle.path, "digits", "attack")
    evaluation = emit_split(int8_bundle.path, "digits", "test", limit=16)
    config = DecoderConfig(decoder="deconv", epochs=2)
    results = {attack: audit(int8_bundle, train, evaluation, config, attack=attack, checkpoint=ckpt,
                             whitebox=WhiteboxConfig(steps=60), learning_curve=False, recognisability=False)
               for attack in ("gan", "whitebox", "query-free")}
    floor = results["whitebox"]["floor"]["metrics"]["psnr"]["mean"]
    assert results["whitebox"]["metrics"]["psnr"]["mean"] > floor + 3, "white-box inversion beats the floor"
    assert "holds the head's weights" in results["whitebox"]["threat_model"]["attacker_knowledge"]
    assert "no device queries" in results["query-free"]["threat_model"]["attacker_knowledge"]
    assert results["query-free"]["decoder"]["shadow"]["history"], "the shadow head was trained through the tail"
    assert results["query-free"]["decoder"]["shadow"]["device"] == "cpu"
    assert results["whitebox"]["decoder"]["whitebox"]["device"] == "cpu"
    assert results["gan"]["decoder"]["config"]["adversarial_weight"] > 0
    with pytest.raises(Exception, match="pass it with --checkpoint"):
        audit(int8_bundle, train, evaluation, config, attack="whitebox")
    with pytest.raises(AttackError, match="unknown attack 'magic'"):
        audit(int8_bundle, train, evaluation, config, attack="magic")
