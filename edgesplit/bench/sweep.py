"""`run_sweep(spec, out)`: models x cuts x precisions x backends x devices x decoders, resumable.

Per model: (train) -> server tail latency per cut -> (roofline estimates) -> per cut x precision: export
-> profile on every backend x device -> emit the attack/test splits -> audit with every decoder. Each
finished step appends one row to OUT/results.jsonl (see `store.py`) with the sha256 of every file it read;
a step whose row is there, made from the same inputs, is not redone, and a later step reuses what an earlier
one produced (a bundle is built once per model/cut/precision). A changed input (a bundle deleted and
re-exported, features emitted again) redoes every step downstream of it. Impossible combinations are recorded as `skipped` with the reason; a step that
fails is recorded as `failed` and retried on the next run, and the sweep goes on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections import Counter
from functools import partial
from pathlib import Path

from edgesplit.atomic import probe_writable, write_text_atomic
from edgesplit.bench.clock import StepClock
from edgesplit.bench.lock import folder_lock
from edgesplit.bench.spec import ModelEntry, SweepSpec
from edgesplit.bench.store import ResultsStore, failed_steps, step_label
from edgesplit.errors import BenchError, EdgesplitError
from edgesplit.progress import Progress, resolve

RESULTS = "results.jsonl"
FOLDERS = ("models", "defended", "bundles", "features", "audits")


def run_sweep(spec: SweepSpec, out_dir: str | Path, fresh: bool = False, append: bool = False,
              progress: Progress | None = None) -> Path:
    """Run (or resume) the sweep into `out_dir`; returns the results file.

    Before any step: OUT must be writable, no other sweep may hold it (`lock.folder_lock`), and every model
    and cut of the spec must resolve.
    """
    out = Path(out_dir)
    progress = resolve(progress)
    check_writable(out)
    with folder_lock(out, progress):
        results = out / RESULTS
        if fresh and results.exists():
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            results.rename(out / f"results.{stamp}.jsonl")  # kept aside, never deleted
        store = ResultsStore(results, spec.sha256, append=append)
        cuts = {entry.name: _resolve_cuts(entry, spec) for entry in spec.models}
        write_text_atomic(out / "spec.json", json.dumps({"sha256": spec.sha256, "spec": spec.to_dict()}, indent=2)
                          + "\n")
        runner = _Sweep(spec, out, store, progress, cuts)
        progress.message(runner.opening())
        for model in spec.models:
            runner.model(model)
        progress.message(runner.closing())
    return results


def check_writable(out: Path) -> None:
    """Create OUT and prove that files can be written in it (and in the step folders already there)."""
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file, not a folder: choose a folder for the sweep")
    for folder in (out, *(out / name for name in FOLDERS if (out / name).is_dir())):
        try:
            probe_writable(folder)
        except OSError as exc:
            raise BenchError(f"cannot write in {folder} ({exc.strerror or exc}): choose a writable --out, "
                             f"or fix the folder's permissions") from None


def _resolve_cuts(entry: ModelEntry, spec: SweepSpec) -> list[str]:
    """The cut names of one model, resolved before any step runs (a typo stops the sweep before the work)."""
    import torch

    from edgesplit.models import analyse, create_model

    if entry.checkpoint is not None and not Path(entry.checkpoint).is_file():
        raise BenchError(f"model {entry.name}: checkpoint {entry.checkpoint} does not exist: fix the path in the "
                         f"spec, or use train_epochs instead")
    c, h, _ = entry.input_shape
    num_classes = None if entry.checkpoint else 10  # the cut points do not depend on the class count
    model = create_model(entry.name, num_classes=num_classes, in_chans=None if entry.checkpoint else c,
                         img_size=None if entry.checkpoint else h, checkpoint=entry.checkpoint, seed=spec.data.seed)
    built = getattr(model, "edgesplit_spec", None)
    if entry.checkpoint and built is not None and (built.in_chans, built.img_size) != (c, h):
        raise BenchError(f"model {entry.name}: input = \"{entry.input}\" but checkpoint {entry.checkpoint} was built "
                         f"for {built.in_chans}x{built.img_size}x{built.img_size}: set input = "
                         f"\"{built.in_chans}x{built.img_size}x{built.img_size}\" in the spec (or --input)")
    analysis = analyse(model, torch.zeros(1, c, h, h))
    cuts = analysis.blocks if entry.cuts == "blocks" else [analysis.resolve(n) for n in entry.cuts]
    if not cuts:
        raise BenchError(f"model {entry.name} has no block cuts: list cuts = [...] in the spec")
    return [cut.name for cut in cuts]


def _per_precision(spec: SweepSpec) -> Counter:
    """The steps one cut x precision runs: export, profile per backend x device, emit and the audits."""
    steps = Counter(export=1, profile=len(spec.devices) * len(spec.backends))
    if spec.audit:
        steps.update(emit=1, audit=len(spec.decoders))
    return steps


def _times(steps: Counter, n: int) -> Counter:
    return Counter({k: v * n for k, v in steps.items()})


def planned_steps(spec: SweepSpec, entry: ModelEntry, cuts: int) -> Counter:
    """How many steps of each kind the sweep of one model with `cuts` cuts runs."""
    steps = Counter(train=int(entry.checkpoint is None and entry.train_epochs > 0), tail=cuts + 1,
                    estimate=len(spec.estimate) * cuts * len(spec.precisions), defend=cuts * len(spec.defenses))
    return steps + _times(_per_precision(spec), cuts * (1 + len(spec.defenses)) * len(spec.precisions))


class _Sweep:
    def __init__(self, spec: SweepSpec, out: Path, store: ResultsStore, progress: Progress,
                 cuts: dict[str, list[str]]) -> None:
        self.spec, self.out, self.store, self.progress, self.cuts = spec, out, store, progress, cuts
        self.decoders: dict = {}  # FP32 decoders, reused as the transfer attacker of the other precisions
        planned = sum((planned_steps(spec, m, len(cuts[m.name])) for m in spec.models), Counter())
        self.clock = StepClock(planned, store.rows, spec.sha256)
        self._digests: dict[tuple, str] = {}

    def opening(self) -> str:
        kept = sum(self.clock.finished_before.values())
        return (f"sweep into {self.out}: {self.clock.total} steps" + (f", {kept} finished earlier (kept unless "
                f"their inputs changed)" if kept else "") + f"; {self.clock.time_left()}")

    def closing(self) -> str:
        failed = len(failed_steps(self.store.rows, self.spec.sha256))
        return (f"sweep done in {self.clock.elapsed()}: {self.clock.ran} steps run, {self.clock.reused} kept from "
                f"earlier runs, {failed} failed")

    # one step -------------------------------------------------------------------------------------------
    def step(self, fn, valid=None, inputs: dict | None = None, **key) -> dict | None:
        """Run `fn()` (returning the row's fields) unless this step is done; record ok / skipped / failed.

        A finished row is kept only when it was made from the same `inputs` (name -> sha256 of the files the
        step reads: a re-exported bundle redoes every step that used it) and `valid(row)` says what it
        produced is still there (a deleted bundle is rebuilt). The row records its inputs.
        """
        inputs = inputs or {}
        done = self.store.find(**key)
        if (done is not None and done["status"] in ("ok", "skipped") and done.get("inputs", {}) == inputs
                and (valid is None or done["status"] != "ok" or valid(done))):
            self.clock.reached(key["step"], None)
            return done
        label = step_label(key)
        start = time.perf_counter()
        try:
            fields = fn()
            status = fields.pop("status", "ok")
        except (EdgesplitError, OSError) as exc:
            fields, status = {"reason": str(exc)}, "failed"
        row = self.store.append({**key, **fields, "inputs": inputs, "status": status,
                                 "seconds": time.perf_counter() - start})
        self.clock.reached(key["step"], row["seconds"])
        note = f" ({row['reason']})" if status != "ok" and row.get("reason") else ""
        self.progress.message(f"{self.clock.position()}: {label}: {status} in {row['seconds']:.1f} s{note}; "
                              f"{self.clock.time_left()}")
        return row if status in ("ok", "skipped") else None

    def _exists(self, *fields_or_file):
        """A `valid` check: the paths a row names (relative to OUT) exist (a trailing file name inside a folder)."""
        names = [f for f in fields_or_file if "." not in f]
        inner = [f for f in fields_or_file if "." in f]

        def check(row: dict) -> bool:
            return all((self.out / row[n] / Path(*inner)).exists() if inner else (self.out / row[n]).exists()
                       for n in names)

        return check

    def _bundle_unchanged(self, row: dict) -> bool:
        """An export row still describes the head on disk (not deleted, not replaced by another export). An
        engine added by 'edgesplit bundle engine' rewrites the manifest but not the head: the export stands."""
        bundle_dir = self.out / row["bundle"]
        if not (bundle_dir / "manifest.json").is_file():
            return False
        if "head_identity" in row:
            return self.head_identity(bundle_dir) == row["head_identity"]
        return self.digest(bundle_dir / "manifest.json") == row.get("bundle_sha256")

    def head_identity(self, bundle_dir: Path) -> str:
        """What emission and audits depend on: the head graph's sha256 and the input and wire the manifest gives
        it, not the rest of the manifest (engines, fidelity). A manifest without them: its own sha256."""
        manifest = bundle_dir / "manifest.json"
        try:
            m = json.loads(manifest.read_text())
            core = {"head": m["files"]["head.onnx"]["sha256"], "input": m["input"], "wire": m["wire"]}
        except (OSError, ValueError, KeyError, TypeError):
            return self.digest(manifest)
        return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()

    def digest(self, path: Path) -> str:
        """sha256 of a file, computed once per version of it (size and modification time)."""
        from edgesplit.export.bundle import sha256_file

        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._digests:
            self._digests[key] = sha256_file(path)
        return self._digests[key]

    def inputs(self, **paths) -> dict:
        """{name: sha256} of the files a step reads (None: not used by this step)."""
        return {name: self.digest(Path(path)) for name, path in paths.items() if path is not None}

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.out)

    # the model ------------------------------------------------------------------------------------------
    def model(self, entry: ModelEntry) -> None:
        import torch

        from edgesplit.models import analyse, create_model

        c, h, _ = entry.input_shape
        cut_names = self.cuts[entry.name]
        checkpoint = entry.checkpoint
        if checkpoint is None and entry.train_epochs > 0:
            row = self.step(partial(self._train, entry), valid=self._exists("checkpoint"), step="train",
                            model=entry.name)
            if row is None:
                self.clock.passed_over(planned_steps(self.spec, entry, len(cut_names)) - Counter(train=1))
                return
            checkpoint = str(self.out / row["checkpoint"])
        num_classes = None if checkpoint else self._data_info(entry).num_classes
        model = create_model(entry.name, num_classes=num_classes, in_chans=None if checkpoint else c,
                             img_size=None if checkpoint else h, checkpoint=checkpoint, seed=self.spec.data.seed)
        analysis = analyse(model, torch.zeros(1, c, h, h))
        cuts = [analysis.resolve(n) for n in cut_names]
        weights = "checkpoint" if checkpoint else f"random-init (seed {self.spec.data.seed})"
        uses = self.inputs(checkpoint=checkpoint)
        self.step(partial(self._tail, model, None, entry), inputs=uses, step="tail", model=entry.name, cut="input")
        for cut in cuts:
            self.step(partial(self._tail, model, cut, entry), inputs=uses, step="tail", model=entry.name,
                      cut=cut.name)
        for profile in self.spec.estimate:
            self._estimates(entry, checkpoint, profile, cut_names)
        for cut in cuts:
            self._unit(entry, checkpoint, cut.name, cut.name, None, weights)
            for defense in self.spec.defenses:
                row = self.step(partial(self._defend, entry, checkpoint, cut.name, defense),
                                valid=self._exists("checkpoint"), inputs=uses, step="defend", model=entry.name,
                                cut=cut.name, defense=defense.label)
                if row is None:
                    self.clock.passed_over(_times(_per_precision(self.spec), len(self.spec.precisions)))
                    continue
                self._unit(entry, str(self.out / row["checkpoint"]), cut.name, row["defended_cut"],
                           defense.label, f"defended checkpoint ({defense.label})")

    def _unit(self, entry: ModelEntry, checkpoint, cut: str, export_cut: str, defense: str | None, weights: str):
        """Export -> profile -> emit -> audit of one cut (of the undefended model, or of one defense).

        Each step names the sha256 of what it reads (checkpoint, bundle, feature files) as its inputs, so a
        changed input redoes every step downstream of it.
        """
        fp32_attack = previous_attack = None
        tag = "" if defense is None else f"-{_slug(defense)}"
        per_precision = _per_precision(self.spec)
        for precision in self.spec.ordered_precisions:
            key = dict(model=entry.name, cut=cut, precision=precision, defense=defense)
            bundle = self.step(partial(self._export, entry, checkpoint, export_cut, precision, weights, tag),
                               valid=self._bundle_unchanged, inputs=self.inputs(checkpoint=checkpoint),
                               step="export", **key)
            if bundle is None:
                self.clock.passed_over(per_precision - Counter(export=1))
                continue
            bundle_dir = self.out / bundle["bundle"]
            for device in self.spec.devices:  # a profile depends on the whole manifest (an engine added: redone)
                for backend in self.spec.backends:
                    self.step(partial(self._profile, bundle_dir, backend, device, precision, checkpoint),
                              inputs=self.inputs(bundle=bundle_dir / "manifest.json"), step="profile",
                              backend=backend, device=device, **key)
            uses = {"bundle": self.head_identity(bundle_dir)}
            if not self.spec.audit:
                continue
            emitted = self.step(partial(self._emit, bundle_dir, entry, cut + tag, precision),
                                valid=self._exists("attack_features", "test_features"), inputs=uses, step="emit",
                                backend="ort", device="local", **key)
            if emitted is None:
                self.clock.passed_over(Counter(audit=per_precision["audit"]))
                continue
            attack, test = self.out / emitted["attack_features"], self.out / emitted["test_features"]
            if precision == "fp32":
                fp32_attack = attack
            transfer = fp32_attack if precision != "fp32" else None
            audit_uses = {**uses, **self.inputs(attack_features=attack, test_features=test,
                                                transfer_features=transfer, start_features=previous_attack)}
            for decoder in self.spec.decoders:
                self.step(partial(self._audit, bundle_dir, emitted, decoder, fp32_attack, previous_attack, entry,
                                  cut + tag, precision), valid=self._exists("audit"), inputs=audit_uses,
                          step="audit", decoder=decoder, **key)
            previous_attack = attack  # the next precision's decoders start here

    def _data_info(self, entry: ModelEntry):
        from edgesplit.data import load_dataset

        c, h, _ = entry.input_shape
        d = self.spec.data
        return load_dataset(d.name, root=d.root, split="train", img_size=h, channels=c, seed=d.seed, limit=1).info

    # steps ----------------------------------------------------------------------------------------------
    def _train(self, entry: ModelEntry) -> dict:
        from edgesplit.bench.targets import train_target

        c, h, _ = entry.input_shape
        d = self.spec.data
        path, accuracy = train_target(entry.name, d.name, d.root, c, h, entry.train_epochs, d.seed,
                                      self.out / "models" / f"{entry.name}.pt", self.progress)
        return {"checkpoint": self.rel(path), "test_accuracy": accuracy, "data": d.name, "epochs": entry.train_epochs}

    def _tail(self, model, cut, entry: ModelEntry) -> dict:
        from edgesplit.bench.server import time_tail

        return time_tail(model, cut, entry.input_shape, self.spec.profile, self.progress)

    def _estimates(self, entry: ModelEntry, checkpoint, profile: str, cut_names: list[str]) -> None:
        """One estimate row per cut x precision on board `profile` (one roofline pass serves them all)."""
        from edgesplit.runtime.estimates import estimate_cuts

        device, uses = f"estimate:{profile}", self.inputs(checkpoint=checkpoint)
        keys = [dict(step="estimate", model=entry.name, cut=n, precision=p, device=device)
                for n in cut_names for p in self.spec.precisions]
        if all(self.store.done(**k) and self.store.find(**k).get("inputs", {}) == uses for k in keys):
            rows, error = [], None  # every row is kept: step() only counts them
        else:
            try:
                rows, error = estimate_cuts(entry.name, entry.input_shape, profile, self.spec.precisions,
                                            checkpoint), None
            except EdgesplitError as exc:
                rows, error = [], exc
        by_key = {(r["cut"], r["precision"]): r for r in rows}
        for k in keys:
            self.step(partial(_estimate_fields, by_key.get((k["cut"], k["precision"])), error), inputs=uses, **k)

    def _defend(self, entry: ModelEntry, checkpoint, cut: str, defense) -> dict:
        from edgesplit.bench.targets import load_splits
        from edgesplit.defenses import DefendConfig, defend_model
        from edgesplit.models import create_model, save_checkpoint

        c, h, _ = entry.input_shape
        d = self.spec.data
        train_set, test_set = load_splits(d.name, d.root, h, c, d.seed)
        model = (create_model(entry.name, checkpoint=checkpoint) if checkpoint else
                 create_model(entry.name, num_classes=train_set.info.num_classes, in_chans=c, img_size=h,
                              seed=d.seed))
        model, report = defend_model(model, cut, defense.name, defense.params, train_set, test_set,
                                     DefendConfig(epochs=defense.epochs, seed=d.seed), self.progress)
        path = save_checkpoint(model, self.out / "defended" / entry.name / f"{cut}-{_slug(defense.label)}.pt",
                               metrics={"test_accuracy": report["test_accuracy"]})
        return {"checkpoint": self.rel(path), "defended_cut": report["defended_cut"],
                "test_accuracy": report["test_accuracy"], "test_accuracy_before": report["test_accuracy_before"],
                "params": report["params"], "history": report["history"]}

    def _export(self, entry: ModelEntry, checkpoint, cut: str, precision: str, weights: str, tag: str = "") -> dict:
        from edgesplit.export import ExportConfig, export_bundle

        d = self.spec.data
        config = ExportConfig(entry.name, cut, precision=precision, checkpoint=checkpoint,
                              input_shape=entry.input_shape if not checkpoint else None, calib_data=d.name,
                              calib_root=d.root, calib_size=d.calib_size, seed=d.seed)
        path = self.out / "bundles" / entry.name / f"{cut}{tag}-{precision}"
        bundle = export_bundle(config, path, force=True, progress=self.progress)
        m = bundle.manifest
        return {"bundle": self.rel(bundle.path), "bundle_sha256": bundle.sha256,
                "head_identity": self.head_identity(bundle.path), "weights": weights,
                "payload_bytes": m["wire"]["bytes_per_sample"], "wire": m["wire"]["format"],
                "feature_shape": m["output"]["shape"][1:], "macs": m["cut"]["macs"], "params": m["cut"]["params"],
                "head_onnx_bytes": m["fidelity"]["head_onnx_bytes"], "fidelity": m["fidelity"],
                "test_accuracy": m["fidelity"].get("tail_top1_exported_features"),
                "test_accuracy_fp32": m["fidelity"].get("tail_top1_fp32_features"),
                "quantization": (m.get("quantization") or {}).get("target")}

    def _profile(self, bundle_dir: Path, backend: str, device: str, precision: str, checkpoint) -> dict:
        from edgesplit.runtime.timing import TimingConfig

        if device == "local":
            reason = unavailable(backend, precision, bundle_dir)
            if reason:
                return {"status": "skipped", "reason": reason}
        p = self.spec.profile
        timing = TimingConfig(warmup=p.warmup, iters=p.iters, min_seconds=p.min_seconds)
        threads = p.threads or None
        if device == "local":
            from edgesplit.runtime.profile import profile_bundle

            rows = profile_bundle(bundle_dir, backend, p.batches, timing, threads, checkpoint=checkpoint,
                                  progress=self.progress)
        else:
            from edgesplit.devices.remote import SshDevice, parse_device
            from edgesplit.runtime.remote_jobs import profile_remote

            rows = profile_remote(SshDevice(parse_device(device)), bundle_dir, backend, p.batches, timing, threads)
        first = rows[0]
        return {"latency_ms": first["latency_ms"]["p50"], "latency": first["latency_ms"], "batch": first["batch"],
                "payload_bytes": first["payload_bytes_per_sample"], "kind": "measured",
                "peak_rss_above_baseline_bytes": first["memory"].get("rss_peak_above_baseline_bytes"),
                "cpu": first["environment"]["cpu"], "measurements": rows}

    def _emit(self, bundle_dir: Path, entry: ModelEntry, cut: str, precision: str) -> dict:
        from edgesplit.runtime.emit import emit_split

        d, a = self.spec.data, self.spec.attack
        folder = self.out / "features" / entry.name
        paths = {}
        for split, limit in (("attack", a.attack_limit or None), ("test", a.eval_limit or None)):
            ff = emit_split(bundle_dir, d.name, split, limit, d.root, d.seed, progress=self.progress)
            paths[f"{split}_features"] = self.rel(ff.save(folder / f"{cut}-{precision}-{split}.npz"))
        return paths

    def _audit(self, bundle_dir: Path, emitted: dict, decoder: str, fp32_attack: Path | None,
               previous_attack: Path | None, entry: ModelEntry, cut: str, precision: str) -> dict:
        from edgesplit.attacks.audit import audit, write_result
        from edgesplit.attacks.training import DecoderConfig
        from edgesplit.export import load_bundle
        from edgesplit.runtime import load_features

        a = self.spec.attack
        folder = self.out / "audits" / entry.name / f"{cut}-{precision}-{decoder}"
        transfer = load_features(fp32_attack) if fp32_attack is not None and precision != "fp32" else None
        config = DecoderConfig(epochs=a.epochs, batch_size=a.batch_size, patience=a.patience, budget_s=a.budget_s,
                               seed=self.spec.data.seed)
        first = precision == self.spec.ordered_precisions[0]
        result = audit(load_bundle(bundle_dir), load_features(self.out / emitted["attack_features"]),
                       load_features(self.out / emitted["test_features"]), config, self.spec.data.root,
                       self.progress, folder / "grid.png", transfer_features=transfer,
                       decoder_cache=self.decoders, decoders=decoder, learning_curve=a.learning_curve and first,
                       start_features=load_features(previous_attack) if previous_attack is not None else None)
        path = write_result(result, folder)
        return {"audit": self.rel(path), "grid": self.rel(folder / "grid.png"), **audit_row(result)}


def _estimate_fields(row: dict | None, error: EdgesplitError | None) -> dict:
    if error is not None:
        raise error
    if row is None:
        return {"status": "skipped", "reason": "roofline estimates cover block cuts only"}
    return {"latency_ms": row["latency_ms"]["estimate"], "kind": "estimate",
            "payload_bytes": row["payload_bytes_per_sample"], "estimate": row}


def audit_row(result: dict) -> dict:
    """The figures of an audit record that a results row carries (plan and report read these)."""
    m, floor = result["metrics"], result["floor"]["metrics"]
    row = {"wire": result["wire"], "psnr": m["psnr"]["mean"], "ssim": m["ssim"]["mean"],
           "ms_ssim": m["ms_ssim"]["mean"], "psnr_worst": m["psnr"]["worst_case"],
           "ssim_worst": m["ssim"]["worst_case"], "floor_psnr": floor["psnr"]["mean"],
           "floor_ssim": floor["ssim"]["mean"], "strongest": result.get("strongest", {}).get("psnr"),
           "attacker_samples": result["threat_model"]["attacker_data"]["samples"],
           "converged": all(a["decoder"].get("converged", False) for a in result.get("attackers", {}).values()),
           "eval_samples": result["evaluation"]["samples"]}
    if "reidentification" in result:
        r = result["reidentification"]
        row.update(reid_top1=r["top1"], reid_top5=r["top5"], reid_chance=r["chance"]["top1"],
                   reid_floor=r["floor"]["top1"])
    if "recognition" in result:
        r = result["recognition"]
        row.update(recognition=r["reconstruction"], recognition_originals=r["originals"],
                   recognition_floor=r["floor"], recognition_chance=r["chance"])
    if "learning_curve" in result:
        row.update(still_rising=result["learning_curve"]["still_rising"],
                   curve_psnr=[p["psnr"] for p in result["learning_curve"]["points"]])
    if "transfer" in result:
        row["transfer_psnr"] = result["transfer"]["metrics"]["psnr"]["mean"]
        row["transfer_ssim"] = result["transfer"]["metrics"]["ssim"]["mean"]
    return row


def unavailable(backend: str, precision: str, bundle_dir: Path) -> str | None:
    """Why `backend` cannot run a `precision` head on this machine, or None when it can."""
    if backend == "ort":
        return None
    if backend in ("ort-cuda", "ort-trt"):
        import onnxruntime as ort

        provider = "CUDAExecutionProvider" if backend == "ort-cuda" else "TensorrtExecutionProvider"
        if provider not in ort.get_available_providers():
            return f"this onnxruntime has no {provider} (needs onnxruntime-gpu on a CUDA machine)"
        return None
    if backend == "tensorrt":
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            return "TensorRT is not installed here (the 'trt' extra, on a machine with an NVIDIA GPU)"
        from edgesplit.export import load_bundle

        if not load_bundle(bundle_dir, verify=False).engines():
            return "the bundle has no TensorRT engine: run 'edgesplit bundle engine' on this machine"
        return None
    if backend in ("torch", "torch-cuda"):
        if precision == "int8":
            return "the torch backends run fp32 and fp16 heads only"
        import torch

        if backend == "torch-cuda" and not torch.cuda.is_available():
            return "torch sees no CUDA GPU here"
        if backend == "torch" and precision == "fp16":
            return "fp16 heads need torch-cuda (PyTorch's CPU fp16 kernels are no reference)"
        return None
    return f"unknown backend {backend!r}"


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")
