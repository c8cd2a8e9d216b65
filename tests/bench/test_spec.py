"""Sweep specs: errors name the key and the closest one, TOML and its hash, a comma list of cuts."""

from pathlib import Path

import pytest

from edgesplit.bench import load_spec, spec_from_dict
from edgesplit.errors import BenchError
from tests.bench.helpers import TINY


def test_spec_errors_name_the_key_and_the_closest_one(tmp_path):
    with pytest.raises(BenchError, match="unknown key 'precision' in \\[sweep\\].*precisions"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18"}], "precision": ["int8"]}})
    with pytest.raises(BenchError, match="unknown key 'iter' in \\[profile\\].*iters"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18"}]}, "profile": {"iter": 3}})
    with pytest.raises(BenchError, match="unknown key 'chekpoint'.*checkpoint"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18", "chekpoint": "x"}]}})
    with pytest.raises(BenchError, match="unknown backend 'onnx'"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18"}], "backends": ["onnx"]}})
    with pytest.raises(BenchError, match="unknown decoder 'unet'"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18"}], "decoders": ["unet"]}})
    with pytest.raises(BenchError, match="raspberry-pi-5-8gb"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18"}], "estimate": ["raspberry-pi-5"]}})
    with pytest.raises(BenchError, match="input '3x64' is not CxHxW"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18", "input": "3x64"}]}})
    with pytest.raises(BenchError, match="names no model"):
        spec_from_dict({"sweep": {}})
    (tmp_path / "bad.toml").write_text("[sweep\nmodels = 3")
    with pytest.raises(BenchError, match="not valid TOML"):
        load_spec(tmp_path / "bad.toml")
    with pytest.raises(BenchError, match="does not exist"):
        load_spec(tmp_path / "none.toml")


def test_spec_from_toml_and_its_hash(tmp_path):
    (tmp_path / "s.toml").write_text('[sweep]\nprecisions = ["int8"]\n[[sweep.models]]\nname = "resnet18"\n'
                                     'input = "3x64x64"\ncuts = ["layer1", "layer2"]\n[profile]\nbatches = [1, 8]\n')
    spec = load_spec(tmp_path / "s.toml")
    assert spec.models[0].input_shape == (3, 64, 64) and spec.models[0].cuts == ("layer1", "layer2")
    assert spec.profile.batches == (1, 8) and spec.precisions == ("int8",)
    assert spec.sha256 == load_spec(tmp_path / "s.toml").sha256
    assert spec.sha256 != spec_from_dict({**TINY}).sha256


def test_a_comma_list_of_cuts_is_a_list_not_letters():
    spec = spec_from_dict({"sweep": {"models": [{"name": "classifier4", "cuts": "features.1, features.3"}]}})
    assert spec.models[0].cuts == ("features.1", "features.3")


def test_profile_cuda_graph_key_and_a_spec_without_it_keeps_its_hash():
    """Issue 16: [profile] cuda_graph (torch-cuda's graph mode); absent, the spec hashes as it did before."""
    assert spec_from_dict(TINY).sha256 == "7a772bf866ca49a9cfe3b21798650a88f9bcf4996494eedc34016cd103ff6fb0"
    assert spec_from_dict(TINY).profile.cuda_graph is None
    on = spec_from_dict({**TINY, "profile": {**TINY["profile"], "cuda_graph": True}})
    off = spec_from_dict({**TINY, "profile": {**TINY["profile"], "cuda_graph": False}})
    assert on.profile.cuda_graph is True and off.profile.cuda_graph is False
    assert len({on.sha256, off.sha256, spec_from_dict(TINY).sha256}) == 3
    with pytest.raises(BenchError, match="cuda_graph must be true or false"):
        spec_from_dict({**TINY, "profile": {**TINY["profile"], "cuda_graph": "yes"}})


def test_int8_scope_defaults_to_auto_without_changing_the_hash_and_is_refused_with_several_devices():
    spec = spec_from_dict({**TINY})
    assert spec.int8_scope == "auto" and "int8_scope" not in spec.to_dict(), "specs written before keep their hash"
    every = spec_from_dict({**TINY, "sweep": {**TINY["sweep"], "int8_scope": "all"}})
    assert every.int8_scope == "all" and every.sha256 != spec.sha256
    with pytest.raises(BenchError, match="unknown int8_scope 'some'"):
        spec_from_dict({**TINY, "sweep": {**TINY["sweep"], "int8_scope": "some"}})
    remote = {**TINY["sweep"], "devices": ["local", "ssh://pi@board"]}
    with pytest.raises(BenchError, match="not on local and ssh://pi@board: sweep one device, or set "
                                         'int8_scope = "all"'):
        spec_from_dict({**TINY, "sweep": remote})
    alone = spec_from_dict({**TINY, "sweep": {**TINY["sweep"], "devices": ["ssh://pi@board"]}})
    assert alone.int8_scope == "auto", "one board: its INT8 heads are measured there"
    from edgesplit.bench.sweep_steps import SweepSteps
    from edgesplit.progress import SilentProgress

    assert SweepSteps(alone, Path("out"), SilentProgress()).int8_measurer().where == "ssh://pi@board:22"
    assert SweepSteps(spec, Path("out"), SilentProgress()).int8_measurer() is None, "this host"
    assert spec_from_dict({**TINY, "sweep": {**remote, "int8_scope": "all"}}).devices[1] == "ssh://pi@board"
    assert spec_from_dict({**TINY, "sweep": {**remote, "precisions": ["fp32"]}}), "no int8 head: nothing to measure"


def test_relative_paths_are_read_from_the_spec_files_folder(tmp_path, monkeypatch, c4_gray):
    """checkpoint, data root and onnx alike: a spec runs the same from any working folder, and hashes the same."""
    import os
    import shutil

    from edgesplit.bench.sweep import _resolve_cuts

    specs, elsewhere = tmp_path / "specs", tmp_path / "elsewhere"
    (specs / "ckpt").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(c4_gray, specs / "ckpt" / "c4.pt")
    (specs / "s.toml").write_text('[[sweep.models]]\nname = "classifier4"\ninput = "1x32x32"\n'
                                  'checkpoint = "ckpt/c4.pt"\ncuts = ["features.1"]\n'
                                  '[data]\nname = "digits"\nroot = "../data"\n')
    monkeypatch.chdir(elsewhere)
    spec = load_spec(Path(os.path.relpath(specs / "s.toml")))
    entry = spec.models[0]
    assert Path(entry.checkpoint_path).resolve() == (specs / "ckpt" / "c4.pt").resolve()
    assert Path(spec.data.root_path).resolve() == (tmp_path / "data").resolve()
    assert _resolve_cuts(entry, spec) == ["features.1"], "the checkpoint is found from another working folder"
    assert spec.to_dict()["models"][0]["checkpoint"] == "ckpt/c4.pt" and spec.to_dict()["data"]["root"] == "../data"
    monkeypatch.chdir(specs)
    assert load_spec("s.toml").sha256 == spec.sha256, "where the sweep runs from does not change the spec"
    (specs / "ckpt" / "c4.pt").unlink()
    with pytest.raises(BenchError, match="checkpoint .*ckpt/c4.pt does not exist \\(a relative path is read from "
                                         "the spec file's folder\\)"):
        _resolve_cuts(load_spec("s.toml").models[0], spec)
    flags = spec_from_dict({"sweep": {"models": [{"name": "classifier4", "checkpoint": "ckpt/c4.pt"}]}})
    assert flags.models[0].checkpoint_path == "ckpt/c4.pt", "a spec from flags reads from the working folder"
