"""Each defense layer does what it says (a test per defense fails if it silently became a no-op), and a
defended head exported with its noise draws fresh noise in every session."""

import numpy as np
import pytest
import torch

from edgesplit.defenses import DefendConfig, defend_model, layers
from edgesplit.models import create_model, save_checkpoint, split
from tests.defenses.helpers import CUT, X, _defended, _head, _plain


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
