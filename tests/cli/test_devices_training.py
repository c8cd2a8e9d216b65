"""--device and --nproc of train, audit and defend: a 2-process audit writes once; what cannot work (CUDA without
a GPU, more NCCL processes than GPUs, --nproc with a mode that writes first, running out of memory mid-training)
is one line, exit 2, and leaves what was written before."""

import json

import pytest
import torch

from tests.cli.commands import one_line_error

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")


@pytest.fixture(scope="module")
def attack_features(int8_bundle, tmp_path_factory):
    from edgesplit.cli.main import main

    feats = tmp_path_factory.mktemp("feats")
    assert main(["emit", str(int8_bundle.path), "--split", "attack", "--out", str(feats / "attack.npz"),
                 "--quiet"]) == 0
    assert main(["emit", str(int8_bundle.path), "--split", "test", "--limit", "32", "--out",
                 str(feats / "test.npz"), "--quiet"]) == 0
    return feats / "attack.npz", feats / "test.npz"


def _audit_args(bundle, feats, out, *extra):
    return ["audit", "--bundle", str(bundle.path), "--features", str(feats[0]), "--eval-features", str(feats[1]),
            "--decoder", "deconv", "--epochs", "2", "--no-learning-curve", "--out", str(out), "--quiet", *extra]


@pytest.mark.slow  # about 35 s on two cores: two processes each import torch and train
def test_audit_in_two_gloo_processes_writes_once(int8_bundle, attack_features, tmp_path, capfd):
    from edgesplit.cli.main import main

    out = tmp_path / "a"
    assert main(_audit_args(int8_bundle, attack_features, out, "--device", "cpu", "--nproc", "2")) == 0
    printed = capfd.readouterr().out
    assert printed.count("strongest:") == 1, "only process 0 prints"
    record = json.loads((out / "audit.json").read_text())
    assert record["decoder"]["config"]["device"] == "cpu" and (out / "grid.png").is_file()


@NO_GPU
def test_cuda_without_a_gpu_is_one_line(int8_bundle, attack_features, tmp_path, capsys):
    line = one_line_error(capsys, *_audit_args(int8_bundle, attack_features, tmp_path / "a", "--device", "cuda"))
    assert "sees no CUDA GPU" in line and "--device cpu or auto" in line
    for attack in ("whitebox", "query-free"):  # the attackers that need the PyTorch model go through it too
        line = one_line_error(capsys, *_audit_args(int8_bundle, attack_features, tmp_path / "w", "--device", "cuda",
                                                   "--attack", attack))
        assert "sees no CUDA GPU" in line and not (tmp_path / "w").exists()
    line = one_line_error(capsys, "train", "classifier4", "--device", "cuda", "--out", str(tmp_path / "t"))
    assert "sees no CUDA GPU" in line and not (tmp_path / "t").exists()
    line = one_line_error(capsys, "defend", "classifier4", "--cut", "features.1", "--defense", "noise", "--device",
                          "cuda", "--out", str(tmp_path / "d"))
    assert "sees no CUDA GPU" in line


def test_more_processes_than_gpus_is_one_line(int8_bundle, attack_features, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # an error path: no figure is faked
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    line = one_line_error(capsys, *_audit_args(int8_bundle, attack_features, tmp_path / "a", "--device", "cuda",
                                               "--nproc", "2"))
    assert "--nproc 2 on --device cuda, but this machine has 1 GPU" in line and not (tmp_path / "a").exists()


def test_nproc_with_a_mode_that_writes_first_is_one_line(tmp_path, capsys):
    line = one_line_error(capsys, "audit", "--preset", "cem-standard", "--nproc", "2", "--device", "cpu", "--out",
                          str(tmp_path / "p"))
    assert "--preset writes files first" in line and "drop --nproc" in line


def test_out_of_memory_mid_training_is_one_line_and_keeps_what_was_written(int8_bundle, attack_features, tmp_path,
                                                                           capsys, monkeypatch):
    from edgesplit.attacks import training

    out = tmp_path / "a"
    out.mkdir()
    (out / "audit.json").write_text('{"earlier": true}')

    def out_of_memory(self, feeder, rows, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(training._Stepper, "epoch", out_of_memory)  # an error path: no figure is faked
    line = one_line_error(capsys, *_audit_args(int8_bundle, attack_features, out, "--device", "cpu"))
    assert "out of memory training decoder deconv at batch" in line and "lower the decoder batch" in line
    assert json.loads((out / "audit.json").read_text()) == {"earlier": True}


def test_without_nproc_removes_only_that_option():
    from edgesplit.cli.launch import without_nproc

    assert without_nproc(["audit", "--nproc", "2", "--out", "o", "--nproc=3", "--seed", "1"]) == [
        "audit", "--out", "o", "--seed", "1"]
