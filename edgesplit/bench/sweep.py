"""`run_sweep(spec, out)`: models x cuts x precisions x backends x devices x decoders, resumable.

Per model: (train) -> server tail latency per cut -> (roofline estimates) -> per cut x precision: export
-> profile on every backend x device -> emit the attack/test splits -> audit with every decoder. Each
finished step appends one row to OUT/results.jsonl (see `store.py`); a step whose row is there is not
redone, and a later step reuses what an earlier one produced (a bundle is built once per
model/cut/precision). Impossible combinations are recorded as `skipped` with the reason; a step that
fails is recorded as `failed` and retried on the next run, and the sweep goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from functools import partial
from pathlib import Path

from edgesplit.bench.spec import ModelEntry, SweepSpec
from edgesplit.bench.store import ResultsStore
from edgesplit.errors import BenchError, EdgesplitError
from edgesplit.progress import Progress, resolve

RESULTS = "results.jsonl"


def run_sweep(spec: SweepSpec, out_dir: str | Path, fresh: bool = False, append: bool = False,
              progress: Progress | None = None) -> Path:
    """Run (or resume) the sweep into `out_dir`; returns the results file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS
    if fresh and results.exists():
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        results.rename(out / f"results.{stamp}.jsonl")  # kept aside, never deleted
    store = ResultsStore(results, spec.sha256, append=append)
    _write_json(out / "spec.json", {"sha256": spec.sha256, "spec": spec.to_dict()})
    runner = _Sweep(spec, out, store, resolve(progress))
    for model in spec.models:
        runner.model(model)
    return results


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


class _Sweep:
    def __init__(self, spec: SweepSpec, out: Path, store: ResultsStore, progress: Progress) -> None:
        self.spec, self.out, self.store, self.progress = spec, out, store, progress
        self.decoders: dict = {}  # FP32 decoders, reused as the transfer attacker of the other precisions

    # one step -------------------------------------------------------------------------------------------
    def step(self, fn, valid=None, **key) -> dict | None:
        """Run `fn()` (returning the row's fields) unless this step is done; record ok / skipped / failed.

        `valid(row)` says whether what a finished step produced is still there (a deleted bundle is rebuilt).
        """
        done = self.store.find(**key)
        if done is not None and (valid is None or done["status"] != "ok" or valid(done)):
            return done
        label = " ".join(str(v) for k, v in key.items() if v is not None)
        start = time.perf_counter()
        try:
            fields = fn()
            status = fields.pop("status", "ok")
        except (EdgesplitError, OSError) as exc:
            fields, status = {"reason": str(exc)}, "failed"
        row = self.store.append({**key, **fields, "status": status, "seconds": time.perf_counter() - start})
        note = f" ({row['reason']})" if status != "ok" and row.get("reason") else ""
        self.progress.message(f"{label}: {status} in {row['seconds']:.1f} s{note}")
        return row if status in ("ok", "skipped") else None

    def _exists(self, *fields_or_file):
        """A `valid` check: the paths a row names (relative to OUT) exist (a trailing file name inside a folder)."""
        names = [f for f in fields_or_file if "." not in f]
        inner = [f for f in fields_or_file if "." in f]

        def check(row: dict) -> bool:
            return all((self.out / row[n] / Path(*inner)).exists() if inner else (self.out / row[n]).exists()
                       for n in names)

        return check

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.out)

    # the model ------------------------------------------------------------------------------------------
    def model(self, entry: ModelEntry) -> None:
        import torch

        from edgesplit.models import analyse, create_model

        c, h, _ = entry.input_shape
        checkpoint = entry.checkpoint
        if checkpoint is None and entry.train_epochs > 0:
            row = self.step(partial(self._train, entry), valid=self._exists("checkpoint"), step="train",
                            model=entry.name)
            if row is None:
                return
            checkpoint = str(self.out / row["checkpoint"])
        num_classes = None if checkpoint else self._data_info(entry).num_classes
        model = create_model(entry.name, num_classes=num_classes, in_chans=None if checkpoint else c,
                             img_size=None if checkpoint else h, checkpoint=checkpoint, seed=self.spec.data.seed)
        analysis = analyse(model, torch.zeros(1, c, h, h))
        cuts = analysis.blocks if entry.cuts == "blocks" else [analysis.resolve(n) for n in entry.cuts]
        if not cuts:
            raise BenchError(f"model {entry.name} has no block cuts: list cuts = [...] in the spec")
        weights = "checkpoint" if checkpoint else f"random-init (seed {self.spec.data.seed})"
        self.step(partial(self._tail, model, None, entry), step="tail", model=entry.name, cut="input")
        for cut in cuts:
            self.step(partial(self._tail, model, cut, entry), step="tail", model=entry.name, cut=cut.name)
        for profile in self.spec.estimate:
            self._estimates(entry, checkpoint, profile, [c.name for c in cuts])
        for cut in cuts:
            self._unit(entry, checkpoint, cut.name, cut.name, None, weights)
            for defense in self.spec.defenses:
                row = self.step(partial(self._defend, entry, checkpoint, cut.name, defense),
                                valid=self._exists("checkpoint"), step="defend", model=entry.name, cut=cut.name,
                                defense=defense.label)
                if row is not None:
                    self._unit(entry, str(self.out / row["checkpoint"]), cut.name, row["defended_cut"],
                               defense.label, f"defended checkpoint ({defense.label})")

    def _unit(self, entry: ModelEntry, checkpoint, cut: str, export_cut: str, defense: str | None, weights: str):
        """Export -> profile -> emit -> audit of one cut (of the undefended model, or of one defense)."""
        fp32_attack = previous_attack = None
        tag = "" if defense is None else f"-{_slug(defense)}"
        for precision in self.spec.ordered_precisions:
            key = dict(model=entry.name, cut=cut, precision=precision, defense=defense)
            bundle = self.step(partial(self._export, entry, checkpoint, export_cut, precision, weights, tag),
                               valid=self._exists("bundle", "manifest.json"), step="export", **key)
            if bundle is None:
                continue
            bundle_dir = self.out / bundle["bundle"]
            for device in self.spec.devices:
                for backend in self.spec.backends:
                    self.step(partial(self._profile, bundle_dir, backend, device, precision, checkpoint),
                              step="profile", backend=backend, device=device, **key)
            if not self.spec.audit:
                continue
            emitted = self.step(partial(self._emit, bundle_dir, entry, cut + tag, precision),
                                valid=self._exists("attack_features", "test_features"), step="emit",
                                backend="ort", device="local", **key)
            if emitted is None:
                continue
            if precision == "fp32":
                fp32_attack = self.out / emitted["attack_features"]
            for decoder in self.spec.decoders:
                self.step(partial(self._audit, bundle_dir, emitted, decoder, fp32_attack, previous_attack, entry,
                                  cut + tag, precision), step="audit", decoder=decoder, **key)
            previous_attack = self.out / emitted["attack_features"]  # the next precision's decoders start here

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
        from edgesplit.runtime.estimates import estimate_cuts

        device = f"estimate:{profile}"
        if all(self.store.done(step="estimate", model=entry.name, cut=n, precision=p, device=device)
               for n in cut_names for p in self.spec.precisions):
            return
        try:
            rows = estimate_cuts(entry.name, entry.input_shape, profile, self.spec.precisions, checkpoint)
        except EdgesplitError as exc:
            self.store.append({"step": "estimate", "model": entry.name, "device": device, "status": "failed",
                               "reason": str(exc)})
            return
        for r in rows:
            if r["cut"] in cut_names:
                fields = {"latency_ms": r["latency_ms"]["estimate"], "kind": "estimate",
                          "payload_bytes": r["payload_bytes_per_sample"], "estimate": r}
                self.step(partial(dict, fields), step="estimate", model=entry.name, cut=r["cut"], precision=r["precision"], device=device)

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
        return {"bundle": self.rel(bundle.path), "bundle_sha256": bundle.sha256, "weights": weights,
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
