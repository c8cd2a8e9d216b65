"""Defenses: each one does what it says (a test per defense fails if it silently became a no-op), trains,
travels in the checkpoint, exports (its randomness included) and is refused with clear errors."""

import numpy as np
import pytest
import torch

from edgesplit.data import load_dataset
from edgesplit.defenses import DefendConfig, apply_defense, defend_model, get_defense, layers, list_defenses
from edgesplit.defenses.losses import information_bound, lipschitz_ratios
from edgesplit.errors import DefenseError
from edgesplit.models import create_model, save_checkpoint, split

CUT = "features.1"


def _defended(name, params=None, seed=0):
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=seed)
    apply_defense(model, CUT, name, params, 1, 32)
    return model


def _head(model, x):
    with torch.no_grad():
        return split(model.eval(), f"{CUT}.defense").head(x)


@pytest.fixture(scope="module")
def digits():
    return (load_dataset("digits", split="train", limit=128, img_size=32),
            load_dataset("digits", split="test", limit=64, img_size=32))


X = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))


def _plain():
    return split(create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0).eval(), CUT).head(X)


def test_registry_lists_every_defense_with_two_strengths():
    assert list_defenses() == ["adversarial", "bottleneck", "cem", "channel-subset", "dropout", "fft-entropy",
                               "lipschitz", "noise", "normalize", "pruning", "topk"]
    for name in list_defenses():
        assert len(get_defense(name).strengths) == 2
    with pytest.raises(DefenseError, match="unknown defense 'nosie'.*noise"):
        get_defense("nosie")
    with pytest.raises(DefenseError, match="no parameter 'sigma'.*std"):
        get_defense("noise").resolve({"sigma": 0.1})
    with pytest.raises(DefenseError, match="must be a number >= 0"):
        get_defense("noise").resolve({"std": -1})


def test_noise_is_fresh_on_every_call_with_the_asked_strength():
    model = _defended("noise", {"std": 0.2})
    a, b = _head(model, X), _head(model, X)
    assert not torch.equal(a, b), "inference-time noise: two calls differ"
    assert float((a - b).std()) == pytest.approx(0.2 * 2 ** 0.5, rel=0.05)
    quiet = _defended("noise", {"std": 0.2, "at_inference": False})
    assert torch.equal(_head(quiet, X), _head(quiet, X)) and torch.allclose(_head(quiet, X), _plain())


def test_dropout_zeroes_the_asked_fraction():
    z = _head(_defended("dropout", {"p": 0.4}), X)
    plain_zero = float((_plain() == 0).float().mean())
    assert float((z == 0).float().mean()) == pytest.approx(plain_zero + (1 - plain_zero) * 0.4, abs=0.02)


def test_topk_keeps_exactly_k_channels():
    z = _head(_defended("topk", {"ratio": 0.25}), X)
    alive = (z.abs().flatten(2).sum(2) > 0).sum(1)
    assert (alive <= 32).all() and (alive >= 30).all(), "128 channels x 0.25 (ReLU may already zero a few)"


def test_channel_subset_sends_fewer_channels_and_the_server_puts_them_back():
    model = _defended("channel-subset", {"ratio": 0.25, "seed": 3})
    z = _head(model, X)
    assert z.shape[1] == 32
    restore = dict(model.named_modules())[f"{CUT}.restore"]
    full = split(create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0).eval(), CUT).head(X)
    back = restore(z)
    kept = dict(model.named_modules())[f"{CUT}.defense"].keep
    assert torch.equal(back[:, kept], full[:, kept])
    dropped = [c for c in range(128) if c not in set(kept.tolist())]
    assert (back[:, dropped] == 0).all()


def test_bottleneck_squeezes_to_sigmoid_channels():
    z = _head(_defended("bottleneck", {"channels": 4}), X)
    assert z.shape == (4, 4, 8, 8) and z.min() > 0 and z.max() < 1


def test_normalize_standardises_each_channel():
    z = _head(_defended("normalize"), X)
    with torch.no_grad():
        busy = _plain().flatten(2).var(2) > 1e-3  # channels with some spread before (not ReLU-dead)
    assert busy.any()
    assert torch.allclose(z.flatten(2).mean(2), torch.zeros(4, 128), atol=1e-4)
    assert torch.allclose(z.flatten(2).std(2, unbiased=False)[busy], torch.ones(int(busy.sum())), atol=1e-2)


def test_fft_entropy_is_the_identity_at_alpha_0_and_flattens_the_spectrum_at_1():
    z = torch.rand(2, 3, 8, 8)
    assert torch.allclose(layers.SpectralWhitening(8, 8, alpha=0.0, eps=0)(z), z, atol=1e-4)
    out = layers.SpectralWhitening(8, 8, alpha=1.0, eps=1e-9)(z)
    magnitude = torch.fft.fft2(out.double()).abs()
    assert torch.allclose(magnitude, torch.ones_like(magnitude), atol=1e-3), "phase only: |X| = 1 everywhere"


def test_cem_bound_grows_with_within_class_spread_is_flat_below_the_threshold_and_has_a_gradient():
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    tight = torch.randn(6, 5, generator=torch.Generator().manual_seed(0)) * 0.01
    loose = (tight * 100).requires_grad_()
    assert information_bound(loose, y, 0.1, 0.0) > information_bound(tight, y, 0.1, 0.0) > 0
    information_bound(loose, y, 0.1, 0.125).backward()
    assert loose.grad.abs().sum() > 0, "training can reduce it"
    assert float(information_bound(tight, y, 0.1, 0.125)) == 0.0, "spread below the threshold is not penalised"
    v = loose.detach()[:3].var(0, unbiased=True).mean()
    assert float(information_bound(loose.detach()[:3], y[:3], 1.0, 0.0, log_entropy=False)) == pytest.approx(
        float(v), rel=1e-5)


def test_lipschitz_ratios_of_known_maps():
    x, delta = torch.rand(3, 4), torch.rand(3, 4) * 0.1
    clean = [2 * x, 6 * x]
    noisy = [2 * (x + delta), 6 * (x + delta)]
    assert torch.allclose(lipschitz_ratios(clean, noisy, delta), torch.tensor([2.0, 3.0]))


@pytest.mark.parametrize("name, term", [("cem", "information_bound"), ("adversarial", "reconstruction_mse"),
                                        ("lipschitz", "lipschitz"), ("pruning", "mask_l1")])
def test_training_defenses_add_a_live_loss_term(name, term, digits):
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model, report = defend_model(model, CUT, name, None, *digits, DefendConfig(epochs=1, batch_size=32))
    assert report["history"][0][term] != 0, f"{name}'s loss term was computed"
    assert report["defended_cut"] == f"{CUT}.defense"
    changed = [k for k, v in model.state_dict().items() if k in before and v.shape == before[k].shape
               and not torch.equal(v, before[k])]
    assert any(k.startswith("features.0") for k in changed), "the head was trained"


def test_pruning_removes_channels_from_the_head_and_rebuilds_from_the_checkpoint(digits, tmp_path):
    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0)
    model, report = defend_model(model, CUT, "pruning", {"keep_ratio": 0.25}, *digits,
                                 DefendConfig(epochs=1, batch_size=32))
    conv = dict(model.named_modules())[f"{CUT}.layer.0"]
    assert conv.out_channels == 32 and len(report["params"]["keep"]) == 32, "a smaller head, not just a mask"
    assert _head(model, X).shape == (4, 32, 8, 8)
    path = save_checkpoint(model, tmp_path / "pruned.pt")
    again = create_model("classifier4", checkpoint=str(path))
    with torch.no_grad():
        assert torch.allclose(again.eval()(X), model.eval()(X), atol=1e-6)


def test_defended_checkpoint_exports_with_its_noise_and_every_session_draws_fresh_noise(digits, tmp_path):
    from edgesplit.export import ExportConfig, export_bundle
    from edgesplit.runners import get_runner

    model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32, seed=0)
    model, _ = defend_model(model, CUT, "noise", {"std": 0.1}, *digits, DefendConfig(epochs=1, batch_size=32))
    ckpt = save_checkpoint(model, tmp_path / "noise.pt")
    for precision in ("fp32", "int8"):
        bundle = export_bundle(ExportConfig("classifier4", f"{CUT}.defense", precision=precision,
                                            checkpoint=str(ckpt), calib_size=32, eval_size=32),
                               tmp_path / precision)
        assert bundle.manifest["stochastic"] and bundle.manifest["defense"]["name"] == "noise"
        x = np.random.default_rng(0).random((2, 1, 32, 32), dtype=np.float32)
        runs = []
        for _ in range(2):
            with get_runner("ort") as backend:
                backend.load(bundle)
                runs.append(backend.run(x))
        assert not np.array_equal(*runs), "a new session must not replay the previous session's noise"


def test_defense_errors_are_one_line(capsys):
    from edgesplit.cli.main import main

    with pytest.raises(DefenseError, match="not a module path"):
        apply_defense(create_model("classifier4", num_classes=10, in_chans=1, img_size=32), "conv_9", "noise", None,
                      1, 32)
    with pytest.raises(DefenseError, match="needs C x H x W"):
        model = create_model("classifier4", num_classes=10, in_chans=1, img_size=32)
        apply_defense(model, "fc.1", "fft-entropy", None, 1, 32)
    assert main(["defend", "classifier4", "--cut", "features.1", "--defense", "noise", "--param", "sigma=1",
                 "--out", "x"]) == 2
    assert "no parameter 'sigma'" in capsys.readouterr().err
    assert main(["defend", "--list"]) == 0
    assert "fft-entropy" in capsys.readouterr().out


def test_defend_then_export_on_the_command_line(tmp_path, capsys):
    import json

    from edgesplit.cli.main import main

    assert main(["defend", "classifier4", "--cut", "features.2", "--defense", "bottleneck", "--param", "channels=8",
                 "--input", "1x32x32", "--epochs", "1", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "--cut features.2.defense" in out
    report = json.loads((tmp_path / "d" / "defend.json").read_text())
    assert report["params"] == {"channels": 8} and 0 <= report["test_accuracy"] <= 1
    assert main(["export", "classifier4", "--checkpoint", str(tmp_path / "d" / "model.pt"), "--cut",
                 "features.2.defense", "--precision", "int8", "--calib-size", "32", "--out", str(tmp_path / "b"),
                 "--quiet"]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["wire"]["bytes_per_sample"] == 8 * 4 * 4, "the bottleneck's 8 channels cross, as INT8"
    assert manifest["defense"]["name"] == "bottleneck" and not manifest["stochastic"]
