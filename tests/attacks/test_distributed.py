"""Decoder training split over processes (torch.distributed, gloo on the CPU, started by the elastic launcher):
the same PSNR as one process; a failing process fails the run with one line; devices chosen with one line
for what cannot work."""

import os

import numpy as np
import pytest
import torch

from edgesplit.attacks import DecoderConfig, reconstruct, train_decoder
from edgesplit.errors import ModelError
from edgesplit.models import distributed
from edgesplit.models.device import Feeder, resolve_device

CONFIG = DecoderConfig(decoder="deconv", epochs=8, seed=0)


def _digits_features(n=360):
    """Embedded digits at 16 px and the features a fixed random stride-2 conv head emits for them."""
    from edgesplit.data import load_dataset

    images, _ = load_dataset("digits", split="train", img_size=16, limit=n).tensors()
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, 2, 1), torch.nn.ReLU())
    with torch.no_grad():
        features = head(images)
    return features.numpy(), images.numpy()


def _psnr(recon: torch.Tensor, originals: np.ndarray) -> float:
    mse = ((recon.double() - torch.from_numpy(originals).double()) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


def _train_and_score(features, images, config):
    """One rank's work (also the one-process run): train on the first 300 rows, score the rest."""
    with distributed.session("cpu"):
        trained = train_decoder(features[:300], images[:300], config)
        psnr = _psnr(reconstruct(trained.model, features[300:], config), images[300:])
        return psnr, distributed.world_size(), trained.seconds, trained.images_per_second


def _fail_on_rank_one():
    import os

    if os.environ["RANK"] == "1":
        raise RuntimeError("rank 1 breaks")
    return 0


def test_two_process_gloo_training_matches_one_process_within_half_a_db():
    features, images = _digits_features()
    one, world, _, _ = _train_and_score(features, images, CONFIG)
    assert world == 1
    floor = _psnr(torch.from_numpy(images[:300].mean(0, keepdims=True)).expand(60, -1, -1, -1), images[300:])
    assert one > floor + 3, "the decoder must learn for the comparison to mean something"
    results = distributed.launch(2, _train_and_score, (features, images, CONFIG), what="test", threads=1)
    assert sorted(results) == [0, 1]
    psnr, world, _, _ = results[0]
    assert world == 2
    assert abs(psnr - one) < 0.5, (psnr, one)
    assert results[1][0] == pytest.approx(psnr, abs=1e-9), "every rank ends with rank 0's decoder"


def test_a_failing_process_fails_the_run_with_one_line():
    with pytest.raises(ModelError, match="process 1 of 2 exited with code 1") as info:
        distributed.launch(2, _fail_on_rank_one, what="decoder training", threads=1)
    assert "\n" not in str(info.value)


def test_single_process_helpers_are_no_ops():
    assert not distributed.active() and distributed.rank() == 0 and distributed.is_writer()
    idx = torch.arange(7)
    assert distributed.shard(idx) is idx and distributed.agree(1.5) == 1.5 and distributed.total(2.0, 3) == (2.0, 3)


def test_nproc_beyond_the_gpus_and_cuda_without_a_gpu_are_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ModelError, match="--nproc 2 on --device cuda, but this machine has 1 GPU"):
        distributed.check_nproc(2, "cuda")
    cores = len(os.sched_getaffinity(0))
    distributed.check_nproc(cores, "cpu")  # gloo: a process a core
    with pytest.raises(ModelError, match=f"--nproc {cores + 1} on the CPU, but this process may use {cores} core"):
        distributed.check_nproc(cores + 1, "cpu")  # 64 processes on 2 cores ran the machine out of memory
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    with pytest.raises(ModelError, match="--nproc 2 with --device cuda:1: each process takes a GPU of its own"):
        distributed.check_nproc(2, "cuda:1")  # every process would land on GPU 1 (an NCCL duplicate-GPU failure)
    distributed.check_nproc(1, "cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match="sees no CUDA GPU.*--device cpu or auto"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu" and resolve_device(None) == "cpu"
    with pytest.raises(ModelError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_feeder_on_the_cpu_indexes_the_tensors_themselves():
    z, x = torch.randn(10, 3), torch.randn(10, 2)
    feeder = Feeder(z, x, device="cpu")
    idx = torch.tensor([3, 1])
    got = feeder.rows(idx)
    assert feeder.resident and torch.equal(got[0], z[idx]) and torch.equal(got[1], x[idx])


def test_decoder_config_refuses_an_unresolved_device():
    from edgesplit.errors import AttackError

    with pytest.raises(AttackError, match="neither cpu nor cuda"):
        DecoderConfig(device="auto")


def _defend(limit):
    """One rank's defense fine-tuning (also the one-process run): test accuracy and a weight checksum."""
    from edgesplit.data import load_dataset
    from edgesplit.defenses import DefendConfig, defend_model
    from edgesplit.models import create_model

    with distributed.session("cpu"):
        train = load_dataset("digits", split="train", limit=limit)
        test = load_dataset("digits", split="test", limit=128)
        model = create_model("classifier4", in_chans=1, img_size=32, seed=0)
        model, report = defend_model(model, "features.1", "noise", {"std": 0.1}, train, test,
                                     DefendConfig(epochs=2, batch_size=32))
        return report["test_accuracy"], float(sum(p.detach().double().sum() for p in model.parameters()))


@pytest.mark.slow  # about 20 s on two cores
def test_defense_fine_tuning_in_two_processes_ends_with_one_model():
    one_accuracy, _ = _defend(256)
    results = distributed.launch(2, _defend, (256,), what="test", threads=1)
    assert results[0][1] == results[1][1], "every rank ends with the same weights"
    assert abs(results[0][0] - one_accuracy) < 0.1, (results[0][0], one_accuracy)
