"""A sweep shared by two processes (`edgesplit sweep --nproc 2`, gloo on the CPU, as a user runs it): rank 0
runs every step but the audits, then each process audits its units; the figures match a one-process sweep,
and the result is an ordinary results file (a one-process run of the same spec keeps every row)."""

import json
import subprocess
import sys

from edgesplit.bench import read_results, run_sweep, spec_from_dict

SHARED = """\
[sweep]
precisions = ["fp32", "int8"]
backends = ["ort"]
decoders = ["deconv"]
train_device = "cpu"

[[sweep.models]]
name = "classifier4"
input = "1x32x32"
cuts = ["features.1"]

[[sweep.defenses]]
name = "noise"
params = { std = 1.0, at_inference = false }  # no noise in emitted features: both sweeps emit the same ones
epochs = 1

[profile]
warmup = 1
iters = 5
min_seconds = 0

[attack]
epochs = 3
attack_limit = 128
eval_limit = 32
learning_curve = false

[data]
calib_size = 32
"""

DEFENSE = "noise(at_inference=False,std=1.0)"  # its label in the rows


def _sweep_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "edgesplit.cli.main", "sweep", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=600)


def _audits(results):
    return {(r["defense"], r["precision"]): r for r in read_results(results) if r["step"] == "audit"}


def test_two_processes_share_the_audits_and_match_one_process(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SHARED)
    proc = _sweep_cli(str(spec_file), "--out", "shared", "--nproc", "2", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shared = _audits(tmp_path / "shared" / "results.jsonl")
    # two units: features.1 as trained, and features.1 with the noise defense (its fine-tuning runs in the
    # first part, in process 0 alone: with the group up it must not wait for peers that wait in a barrier)
    assert set(shared) == {(d, p) for d in (None, DEFENSE) for p in ("fp32", "int8")}, set(shared)
    assert all(r["status"] == "ok" for r in shared.values())
    by_unit = {d: {tuple(r["process"]) for (k, _), r in shared.items() if k == d} for d in (None, DEFENSE)}
    assert by_unit == {None: {(0, 2)}, DEFENSE: {(1, 2)}}, "one unit each, all its precisions together"
    rows = read_results(tmp_path / "shared" / "results.jsonl")
    assert sum(r["step"] == "export" for r in rows) == 4 and sum(r["step"] == "defend" for r in rows) == 1
    assert "results:" in proc.stdout
    assert proc.stdout.count("results:") == 1, "one summary (the parent's), not one per process"

    one = tmp_path / "one"
    run_sweep(spec_from_dict(_toml(spec_file)), one)
    alone = _audits(one / "results.jsonl")
    for key, row in shared.items():  # 1 vs 2 threads per decoder: float sums differ, the attack does not
        assert abs(row["psnr"] - alone[key]["psnr"]) < 0.5, (key, row["psnr"], alone[key]["psnr"])
    assert shared[(None, "fp32")]["psnr"] > shared[(None, "fp32")]["floor_psnr"] + 3

    before = len((tmp_path / "shared" / "results.jsonl").read_text().splitlines())
    run_sweep(spec_from_dict(_toml(spec_file)), tmp_path / "shared")  # resumed in one process: nothing to redo
    assert len((tmp_path / "shared" / "results.jsonl").read_text().splitlines()) == before


def test_a_bad_out_of_a_shared_sweep_is_one_line(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SHARED)
    (tmp_path / "taken").write_text("a file")
    proc = _sweep_cli(str(spec_file), "--out", "taken", "--nproc", "2", cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is a file, not a folder" in lines[0], proc.stderr


def _toml(path):
    import tomllib

    return json.loads(json.dumps(tomllib.loads(path.read_text())))
