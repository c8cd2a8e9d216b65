"""Decoders, decoder training and the audit: the attack really learns, and bad input gets one clear line."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from edgesplit.attacks import DecoderConfig, create_decoder, list_decoders, train_decoder
from edgesplit.attacks.audit import audit
from edgesplit.errors import AttackError
from edgesplit.export import ExportConfig, export_bundle
from edgesplit.runtime.emit import emit_split

SHAPES = [((128, 8, 8), (1, 32, 32)), ((576, 7, 7), (3, 224, 224)), ((256,), (1, 32, 32)), ((64, 32, 32), (3, 32, 32)),
          ((24, 12, 12), (3, 48, 48)), ((40, 5, 5), (1, 32, 32))]


@pytest.mark.parametrize("name", list_decoders())
@pytest.mark.parametrize("feature_shape, image_shape", SHAPES)
def test_every_decoder_reaches_every_image_shape(name, feature_shape, image_shape):
    decoder = create_decoder(name, feature_shape, image_shape)
    out = decoder(torch.rand(2, *feature_shape))
    assert out.shape == (2, *image_shape) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name, kwargs", [
    ("deconv", {"stem": False, "output": "tanh", "act": "prelu"}),  # GPZ / efficient-split layouts
    ("upsample", {"act": "hardswish"}),
    ("nonoverlap", {"depth": "light"}), ("nonoverlap", {"depth": "medium"}), ("nonoverlap", {"depth": "deep"}),
])
def test_seed_layouts_of_the_decoders(name, kwargs):
    decoder = create_decoder(name, (576, 7, 7), (3, 224, 224), **kwargs)
    out = decoder(torch.rand(2, 576, 7, 7))
    assert out.shape == (2, 3, 224, 224) and out.min() >= 0 and out.max() <= 1
    convs = [m for m in decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    if name == "nonoverlap":
        assert all(m.kernel_size == m.stride for m in convs), "kernel = stride: non-overlapping"
        assert len(convs) == {"light": 3, "medium": 5, "deep": 5}[kwargs["depth"]]  # 4x 4x 2x vs five 2x
        assert any(isinstance(m, torch.nn.Hardswish) for m in decoder.modules())
    if kwargs.get("stem") is False:
        assert convs[0].in_channels == 576 and len(convs) == 5, "five k4 s2 stages straight from the features"


def test_registry_errors():
    assert list_decoders() == ["attention", "deconv", "nonoverlap", "resnet", "upsample"]
    with pytest.raises(AttackError, match="does not take these options"):
        create_decoder("deconv", (8, 4, 4), (1, 32, 32), depth="deep")
    with pytest.raises(AttackError, match="unknown depth 'huge'"):
        create_decoder("nonoverlap", (8, 4, 4), (1, 32, 32), depth="huge")
    with pytest.raises(AttackError, match="unknown decoder 'upsampel'.*closest: upsample"):
        create_decoder("upsampel", (8, 4, 4), (1, 32, 32))
    with pytest.raises(AttackError, match="cannot reasonably be decoded to 512x512"):
        create_decoder("deconv", (8, 2, 2), (3, 512, 512))
    with pytest.raises(AttackError, match="square 1- or 3-channel"):
        create_decoder("deconv", (8, 4, 4), (2, 32, 32))


def _toy(n=96, seed=0):
    """Images that are a fixed linear function of the features: a decoder must learn it."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 16, 4, 4)).astype(np.float32)
    x = 1 / (1 + np.exp(-np.repeat(np.repeat(z[:, :1], 4, axis=2), 4, axis=3)))
    return z, x.astype(np.float32)


def test_train_decoder_learns_and_is_reproducible():
    z, x = _toy()
    config = DecoderConfig(decoder="deconv", epochs=6, batch_size=16, seed=1)
    a, b = train_decoder(z, x, config), train_decoder(z, x, config)
    assert a.history[-1]["val_mse"] < a.history[0]["val_mse"]
    assert [h["val_mse"] for h in a.history] == [h["val_mse"] for h in b.history]
    assert a.images_per_second > 0 and 1 <= a.best_epoch <= len(a.history)


def test_training_schedules_and_decoder_options_are_used():
    z, x = _toy()
    expo = train_decoder(z, x, DecoderConfig(decoder="deconv", epochs=3, batch_size=32, lr=1e-3,
                                             schedule="exponential", lr_gamma=0.93))
    assert [round(h["lr"], 8) for h in expo.history] == [round(1e-3 * 0.93 ** k, 8) for k in range(3)]
    const = train_decoder(z, x, DecoderConfig(decoder="nonoverlap", epochs=2, batch_size=32, schedule="constant",
                                              decoder_kwargs={"depth": "deep"}, betas=(0.5, 0.999), amsgrad=True))
    assert {h["lr"] for h in const.history} == {1e-3}
    assert any(isinstance(m, torch.nn.Hardswish) for m in const.model.modules()), "decoder_kwargs reach the decoder"
    with pytest.raises(AttackError, match="unknown schedule 'step'"):
        DecoderConfig(schedule="step")


def test_train_decoder_bad_input():
    z, x = _toy(20)
    with pytest.raises(AttackError, match="only 20 attacker samples"):
        train_decoder(z, x)
    z, x = _toy()
    with pytest.raises(AttackError, match="96 feature rows but 95 images"):
        train_decoder(z, x[:95])
    z[3, 0, 0, 0] = np.nan
    with pytest.raises(AttackError, match="NaN or Inf"):
        train_decoder(z, x)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from edgesplit.data import load_dataset
    from edgesplit.models import create_model, save_checkpoint, train_classifier
    from edgesplit.models.training import TrainConfig

    model = create_model("classifier4", in_chans=1, img_size=32)
    train_classifier(model, load_dataset("digits", split="train"), None, TrainConfig(epochs=2))
    return str(save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "c4.pt"))


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory, checkpoint):
    return export_bundle(ExportConfig("classifier4", "features.0", precision="int8", checkpoint=checkpoint,
                                      calib_size=32, eval_size=16), tmp_path_factory.mktemp("audit") / "bundle")


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


def test_cli_audit(int8_bundle, tmp_path, capsys):
    from edgesplit.cli.main import main

    feats = tmp_path / "attack.npz"
    assert main(["emit", str(int8_bundle.path), "--split", "attack", "--out", str(feats), "--quiet"]) == 0
    assert main(["audit", "--bundle", str(int8_bundle.path), "--features", str(feats), "--decoder", "deconv",
                 "--epochs", "3", "--eval-limit", "32", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "floor (mean image)" in out and (tmp_path / "a" / "audit.json").is_file()
    assert main(["audit", "--bundle", str(int8_bundle.path), "--features", str(feats), "--data", "mnist",
                 "--out", str(tmp_path / "b")]) == 2
    assert "pass --data digits" in capsys.readouterr().err


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
    assert results["gan"]["decoder"]["config"]["adversarial_weight"] > 0
    with pytest.raises(Exception, match="pass it with --checkpoint"):
        audit(int8_bundle, train, evaluation, config, attack="whitebox")
    with pytest.raises(AttackError, match="unknown attack 'magic'"):
        audit(int8_bundle, train, evaluation, config, attack="magic")


def test_total_variation_prefers_smooth_images():
    from edgesplit.attacks.whitebox import total_variation

    smooth = torch.linspace(0, 1, 16).repeat(1, 1, 16, 1)
    noisy = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert total_variation(smooth).item() < total_variation(noisy).item()
    assert total_variation(torch.zeros(2, 3, 8, 8)).eq(0).all()
