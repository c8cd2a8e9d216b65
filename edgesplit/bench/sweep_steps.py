"""What each step of a sweep does: each step method of `SweepSteps` (`_train`, `_tail`, `_defend`, `_export`,
`_profile`, `_emit`, `_audit`) runs one step and returns the fields of its results row.

train (the target model, when the spec trains it), tail (server latency of the tail after a cut), defend
(a defended checkpoint per cut), export (a bundle per cut x precision), profile (head latency on a backend
and device), emit (the attack and test feature files), audit (the reconstruction attacks). A step that
cannot run here returns {"status": "skipped", "reason": ...}; one that raises an EdgesplitError or OSError
is recorded as failed. `sweep._Sweep` extends this class: it decides which steps run, in which order, and
whether a finished row can be kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from edgesplit.bench.rows import SweepRow
from edgesplit.bench.spec import SweepModel, SweepSpec
from edgesplit.digest import sha256_file
from edgesplit.errors import EdgesplitError
from edgesplit.progress import Progress


class SweepSteps:
    def __init__(self, spec: SweepSpec, out: Path, progress: Progress) -> None:
        from edgesplit.models.device import resolve_device

        self.spec, self.out, self.progress = spec, out, progress
        self.device = resolve_device(spec.train_device)  # 'cuda' without a GPU: one line before any step
        self.decoders: dict = {}  # FP32 decoders, reused as the transfer attacker of the other precisions
        self._digests: dict[tuple, str] = {}
        self.export_once = True
        self.share = (0, 1)  # (rank, processes) when processes share the sweep's audits (sweep_ranks)
        self._whole: tuple | None = None  # (key, WholeGraph or the reason it failed) of the model in hand
        self._head: tuple | None = None  # (key, GraphHead) of the cut in hand: shared by its precisions

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.out)

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
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._digests:
            self._digests[key] = sha256_file(path)
        return self._digests[key]

    def inputs(self, **paths) -> dict:
        """{name: sha256} of the files a step reads (None: not used by this step)."""
        return {name: self.digest(Path(path)) for name, path in paths.items() if path is not None}

    # Settings a step's row was made with beyond its files, where a later edgesplit changed what the same spec
    # makes: a row from before (without the entry) is redone, not mixed with rows made the new way.
    def export_settings(self, precision: str) -> dict:
        """An int8 head chosen by `--int8-scope auto` (earlier sweeps shipped every node INT8)."""
        return {"int8_scope": "auto"} if precision == "int8" and self.spec.int8_scope == "auto" else {}

    def profile_settings(self, backend: str) -> dict:
        """torch-cuda timed in windows of CUDA events synchronised per growing chunk, replays an event each, eager
        calls as block means (earlier: one timed call at a time; then one sync a window, an event per eager call)."""
        if backend != "torch-cuda":
            return {}
        return {"torch-cuda timing": "eager block means" if self.spec.profile.cuda_graph is False
                else "graph windows, chunked syncs"}

    def _data_info(self, entry: SweepModel):
        from edgesplit.data import load_dataset

        c, h, _ = entry.input_shape
        d = self.spec.data
        return load_dataset(d.name, root=d.root_path, split="train", img_size=h, channels=c, seed=d.seed, limit=1).info

    # the steps --------------------------------------------------------------------------------------------
    def _train(self, entry: SweepModel) -> dict:
        from edgesplit.bench.target_model import train_target

        c, h, _ = entry.input_shape
        d = self.spec.data
        path, accuracy = train_target(entry.name, d.name, d.root_path, c, h, entry.train_epochs, d.seed,
                                      self.out / "models" / f"{entry.name}.pt", self.progress, device=self.device)
        return {"checkpoint": self.rel(path), "test_accuracy": accuracy, "data": d.name, "epochs": entry.train_epochs,
                "train_device": self.device}

    def _tail(self, model, cut, entry: SweepModel) -> dict:
        from edgesplit.bench.tail_timing import time_tail

        return time_tail(model, cut, entry.input_shape, self.spec.profile, self.progress)

    def _defend(self, entry: SweepModel, checkpoint, cut: str, defense) -> dict:
        from edgesplit.bench.target_model import load_splits
        from edgesplit.defenses import DefendConfig, defend_model
        from edgesplit.models import create_model, save_checkpoint

        c, h, _ = entry.input_shape
        d = self.spec.data
        train_set, test_set = load_splits(d.name, d.root_path, h, c, d.seed)
        model = (create_model(entry.name, checkpoint=checkpoint) if checkpoint else
                 create_model(entry.name, num_classes=train_set.info.num_classes, in_chans=c, img_size=h,
                              seed=d.seed))
        model, report = defend_model(model, cut, defense.name, defense.params, train_set, test_set,
                                     DefendConfig(epochs=defense.epochs, seed=d.seed), self.progress,
                                     device=self.device)
        path = save_checkpoint(model, self.out / "defended" / entry.name / f"{cut}-{slug(defense.label)}.pt",
                               metrics={"test_accuracy": report["test_accuracy"]})
        return {"checkpoint": self.rel(path), "defended_cut": report["defended_cut"],
                "test_accuracy": report["test_accuracy"], "test_accuracy_before": report["test_accuracy_before"],
                "params": report["params"], "history": report["history"], "train_device": self.device}

    def _export(self, entry: SweepModel, checkpoint, cut: str, precision: str, weights: str, tag: str = "") -> dict:
        from edgesplit.export import ExportConfig, export_bundle

        d = self.spec.data
        config = ExportConfig(entry.name, cut, precision=precision, checkpoint=checkpoint,
                              input_shape=entry.input_shape if not checkpoint else None, calib_data=d.name,
                              calib_root=d.root_path, calib_size=d.calib_size, seed=d.seed, int8_scope=self.spec.int8_scope)
        path = self.out / "bundles" / entry.name / f"{cut}{tag}-{precision}"
        source, head_from = self._graph_head(config) if self.export_once and not tag else (None, "per-cut export")
        bundle = export_bundle(config, path, force=True, progress=self.progress, source=source,
                               measurer=self.int8_measurer())
        return self.export_fields(bundle, weights, head_from)

    def int8_measurer(self):
        """Where `int8_scope = "auto"` measures: the sweep's one ssh:// device (the spec allows no other mix), or
        None (this host)."""
        if self.spec.devices[0] == "local":
            return None
        from edgesplit.devices.remote import SshDevice, parse_device
        from edgesplit.runtime.remote_measure import SshMeasurer

        return SshMeasurer(SshDevice(parse_device(self.spec.devices[0])))

    def export_fields(self, bundle, weights: str, head_from: str) -> dict:
        """The fields of an export row, from the bundle written."""
        m = bundle.manifest
        return {"bundle": self.rel(bundle.path), "bundle_sha256": bundle.sha256, "head_from": head_from,
                "head_identity": self.head_identity(bundle.path), "weights": weights,
                "payload_bytes": m["wire"]["bytes_per_sample"], "wire": m["wire"]["format"],
                "feature_shape": m["output"]["shape"][1:], "macs": m["cut"]["macs"], "params": m["cut"]["params"],
                "head_onnx_bytes": m["fidelity"]["head_onnx_bytes"], "fidelity": m["fidelity"],
                "test_accuracy": m["fidelity"].get("tail_top1_exported_features"),
                "test_accuracy_fp32": m["fidelity"].get("tail_top1_fp32_features"),
                "quantization": (m.get("quantization") or {}).get("target"), **int8_scope_fields(m)}

    def _graph_head(self, config) -> tuple[object | None, str]:
        """The cut's head from the model's whole ONNX graph (exported once per model and input), or None and
        why not (the per-cut path runs instead)."""
        from edgesplit.export.pipeline import torch_model_record
        from edgesplit.export.sources import GraphHead

        key = (config.model, config.checkpoint, config.input_shape, config.seed)
        if self._whole is None or self._whole[0] != key:
            self._whole = (key, None)  # one model at a time: the previous graph is dropped
            self._whole = (key, self._export_whole(config))
        whole = self._whole[1]
        if isinstance(whole, str):
            return None, f"per-cut export ({whole})"
        if config.cut not in whole:
            return None, "per-cut export (the whole graph has no legal tensor for this cut)"
        if self._head is None or self._head[0] != (key, config.cut):
            spec = whole.spec
            self._head = ((key, config.cut), GraphHead.from_torch(whole, config.cut, torch_model_record(config, spec),
                                                                  spec))
        return self._head[1], "whole-model graph"

    def _export_whole(self, config):
        """The model exported to ONNX once, naming every cut of the sweep; an ExportError's text if it fails."""
        import edgesplit.defenses  # noqa: F401 - registers the 'defense' model option
        from edgesplit.errors import ExportError
        from edgesplit.export.onnx_export import export_whole_model
        from edgesplit.models import analyse, create_model, default_input

        c, h, _ = config.input_shape or (None, None, None)
        model = create_model(config.model, num_classes=config.num_classes, in_chans=c, img_size=h,
                             checkpoint=config.checkpoint, seed=config.seed)
        analysis = analyse(model, default_input(model))
        cuts = [analysis.resolve(name) for name in self.cuts[config.model]]
        spec = model.edgesplit_spec
        folder = self.out / "graphs"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{spec.name}-{spec.in_chans}x{spec.img_size}x{spec.img_size}.onnx"
        try:
            with self.progress.task(f"exporting {spec.name} to ONNX once", total=None):
                whole = export_whole_model(model, cuts, folder / name, config.opset)
        except ExportError as exc:
            return f"the whole model does not export: {exc}"
        return whole

    def _profile(self, bundle_dir: Path, backend: str, device: str, precision: str, checkpoint) -> dict:
        from edgesplit.runtime.timing import TimingConfig

        reason = no_pytorch_model(backend, bundle_dir)
        if reason is None and device == "local":
            reason = unavailable(backend, precision, bundle_dir)
        if reason:
            return {"status": "skipped", "reason": reason}
        p = self.spec.profile
        timing = TimingConfig(warmup=p.warmup, iters=p.iters, min_seconds=p.min_seconds)
        threads = p.threads or None
        cuda_graph = p.cuda_graph if backend == "torch-cuda" else None  # the others have no graph mode
        if device == "local":
            from edgesplit.runtime.profile import profile_bundle

            rows = profile_bundle(bundle_dir, backend, p.batches, timing, threads, checkpoint=checkpoint,
                                  progress=self.progress, cuda_graph=cuda_graph)
        else:
            from edgesplit.devices.remote import SshDevice, parse_device
            from edgesplit.runtime.remote_jobs import profile_remote

            rows = profile_remote(SshDevice(parse_device(device)), bundle_dir, backend, p.batches, timing, threads,
                                  cuda_graph=cuda_graph)
        first = rows[0]
        out = {"latency_ms": first["latency_ms"]["p50"], "latency": first["latency_ms"], "batch": first["batch"],
               "payload_bytes": first["payload_bytes_per_sample"], "kind": "measured",
               "peak_rss_above_baseline_bytes": first["memory"].get("rss_peak_above_baseline_bytes"),
               "cpu": first["environment"]["cpu"], "measurements": rows}
        if "gpu" in first:  # GPU rows: the GPU, versions, clocks and capture mode of the first batch
            out["gpu"] = first["gpu"]
        return out

    def _emit(self, bundle_dir: Path, entry: SweepModel, cut: str, precision: str) -> dict:
        from edgesplit.runtime.emit import emit_split

        d, a = self.spec.data, self.spec.attack
        folder = self.out / "features" / entry.name
        paths = {}
        for split, limit in (("attack", a.attack_limit or None), ("test", a.eval_limit or None)):
            ff = emit_split(bundle_dir, d.name, split, limit, d.root_path, d.seed, progress=self.progress)
            paths[f"{split}_features"] = self.rel(ff.save(folder / f"{cut}-{precision}-{split}.npz"))
        return paths

    def _audit(self, bundle_dir: Path, emitted: SweepRow, decoder: str, fp32_attack: Path | None,
               previous_attack: Path | None, entry: SweepModel, cut: str, precision: str) -> dict:
        from edgesplit.attacks.audit import audit, write_result
        from edgesplit.attacks.training import DecoderConfig
        from edgesplit.export import load_bundle
        from edgesplit.runtime import load_features

        a = self.spec.attack
        folder = self.out / "audits" / entry.name / f"{cut}-{precision}-{decoder}"
        transfer = load_features(fp32_attack) if fp32_attack is not None and precision != "fp32" else None
        config = DecoderConfig(epochs=a.epochs, batch_size=a.batch_size, patience=a.patience, budget_s=a.budget_s,
                               seed=self.spec.data.seed, device=self.device)
        first = precision == self.spec.ordered_precisions[0]
        result = audit(load_bundle(bundle_dir), load_features(self.out / emitted.fields["attack_features"]),
                       load_features(self.out / emitted.fields["test_features"]), config, self.spec.data.root_path,
                       self.progress, folder / "grid.png", transfer_features=transfer,
                       decoder_cache=self.decoders, decoders=decoder, learning_curve=a.learning_curve and first,
                       start_features=load_features(previous_attack) if previous_attack is not None else None)
        path = write_result(result, folder)
        shared = {"process": list(self.share)} if self.share[1] > 1 else {}  # (rank, processes) of a shared sweep
        return {"audit": self.rel(path), "grid": self.rel(folder / "grid.png"), **audit_fields(result),
                "train_device": self.device, **shared}


def int8_scope_fields(manifest: dict) -> dict:
    """An int8 head's scope (asked -> chosen) and, where `auto` measured them, the speed-ups over the FP32 head
    (with the same int8 wire) of the all-INT8 head and of the head chosen; nothing for other precisions."""
    scope = (manifest.get("quantization") or {}).get("scope")
    if manifest.get("precision") != "int8" or not scope:
        return {}
    fields = {"int8_scope": {k: scope[k] for k in ("asked", "chosen")}}
    if "speedup_vs_fp32_head" in scope:
        fields["int8_speedup"] = scope["speedup_vs_fp32_head"]
        fields["int8_float_nodes"] = len(scope["float_nodes"])
    return fields


def estimate_fields(row: dict | None, error: EdgesplitError | None) -> dict:
    if error is not None:
        raise error
    if row is None:
        return {"status": "skipped", "reason": "roofline estimates cover block cuts only"}
    return {"latency_ms": row["latency_ms"]["estimate"], "kind": "estimate",
            "payload_bytes": row["payload_bytes_per_sample"], "estimate": row}


def audit_fields(result: dict) -> dict:
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
    """Why `backend` cannot run a `precision` head on this machine, or None when it can (the runners' rules)."""
    from edgesplit.export import load_bundle
    from edgesplit.runners import unavailable as runner_unavailable

    return runner_unavailable(backend, precision, lambda: load_bundle(bundle_dir, verify=False))


def no_pytorch_model(backend: str, bundle_dir: Path) -> str | None:
    """Why a torch backend cannot run this head: it was cut from a shipped ONNX model (no PyTorch model to
    rebuild); None otherwise."""
    if not backend.startswith("torch"):
        return None
    try:
        model = json.loads((bundle_dir / "manifest.json").read_text())["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # the profile step itself says what is wrong with the bundle
    if model.get("spec") is None:
        return "the torch backends rebuild the PyTorch model, and a head cut from a shipped ONNX model has none"
    return None


def slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")
