"""`run_sweep(spec, out)`: models x cuts x precisions x backends x devices x decoders, resumable.

Per model: (train) -> server tail latency per cut -> (roofline estimates) -> per cut x precision: export
-> profile on every backend x device -> emit the attack/test splits -> audit with every decoder. Each
finished step appends one row to OUT/results.jsonl (see `store.py`) with the sha256 of every file it read;
a step whose row is there, made from the same inputs, is not redone, and a later step reuses what an earlier
one produced (a bundle is built once per model/cut/precision). A changed input (a bundle deleted and
re-exported, features emitted again) redoes every step downstream of it. Impossible combinations are
recorded as `skipped` with the reason; a step that fails is recorded as `failed` and retried on the next run,
and the sweep goes on. What each step does is in `sweep_steps.py` (for a shipped ONNX model, `sweep_onnx.py`:
no train or defend, its cuts are tensors of the file); the rows are `rows.SweepRow`s.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from functools import partial
from pathlib import Path

from edgesplit.atomic import probe_writable, write_text_atomic
from edgesplit.bench.clock import StepClock
from edgesplit.bench.lock import folder_lock
from edgesplit.bench.rows import SweepRow, step_label
from edgesplit.bench.spec import SweepModel, SweepSpec
from edgesplit.bench.store import ResultsStore, failed_steps
from edgesplit.bench.sweep_onnx import OnnxSteps, file_name, resolve_onnx
from edgesplit.bench.sweep_steps import estimate_fields, slug
from edgesplit.errors import BenchError, EdgesplitError
from edgesplit.progress import Progress, resolve

RESULTS = "results.jsonl"
FOLDERS = ("models", "defended", "bundles", "features", "audits")


def run_sweep(spec: SweepSpec, out_dir: str | Path, fresh: bool = False, append: bool = False,
              progress: Progress | None = None, export_once: bool = True) -> Path:
    """Run (or resume) the sweep into `out_dir`; returns the results file.

    `export_once`: each model is exported to ONNX once (per input shape) and every head of its undefended
    cuts is cut from that graph, each precision starting from the same FP32 head. False: every head is
    exported from PyTorch on its own (the per-cut path; also the fallback when a whole model does not export).

    Before any step: OUT must be writable, no other sweep may hold it (`lock.folder_lock`), and every model
    and cut of the spec must resolve. One process does it all; `sweep_ranks.run_shared` is the same sweep
    shared by the processes torchrun (or `sweep --nproc`) started.
    """
    out, progress = Path(out_dir), resolve(progress)
    check_writable(out)
    with folder_lock(out, progress):
        runner = open_sweep(spec, out, fresh, append, progress, export_once)
        runner.run()
    return out / RESULTS


def open_sweep(spec: SweepSpec, out: Path, fresh: bool, append: bool, progress: Progress, export_once: bool,
               stage: str = "all", share: tuple[int, int] = (0, 1)) -> _Sweep:
    """The sweep's runner, its results file opened (`fresh`: the old one set aside first, never deleted), every
    model and cut resolved, OUT/spec.json written. `stage` and `share` (rank, processes): see `_Sweep`."""
    results = out / RESULTS
    if fresh and results.exists():
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        results.rename(out / f"results.{stamp}.jsonl")  # kept aside, never deleted
    store = ResultsStore(results, spec.sha256, append=append)
    cuts, graphs = {}, {}
    for entry in spec.models:
        if entry.onnx is not None:
            graphs[entry.name], cuts[entry.name] = resolve_onnx(entry)
        else:
            cuts[entry.name] = _resolve_cuts(entry, spec)
    if stage != "audit":
        write_text_atomic(out / "spec.json", json.dumps({"sha256": spec.sha256, "spec": spec.to_dict()}, indent=2)
                          + "\n")
    runner = _Sweep(spec, out, store, progress, cuts, stage, share)
    runner.export_once, runner.graphs = export_once, graphs
    return runner


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


def _resolve_cuts(entry: SweepModel, spec: SweepSpec) -> list[str]:
    """The cut names of one model, resolved before any step runs (a typo stops the sweep before the work)."""
    import torch

    import edgesplit.defenses  # noqa: F401 - registers the 'defense' model option
    from edgesplit.models import analyse, create_model

    checkpoint = entry.checkpoint_path
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise BenchError(f"model {entry.name}: checkpoint {checkpoint} does not exist (a relative path is read from "
                         f"the spec file's folder): fix the path in the spec, or use train_epochs instead")
    c, h, _ = entry.input_shape
    num_classes = None if checkpoint else 10  # the cut points do not depend on the class count
    model = create_model(entry.name, num_classes=num_classes, in_chans=None if checkpoint else c,
                         img_size=None if checkpoint else h, checkpoint=checkpoint, seed=spec.data.seed)
    built = getattr(model, "edgesplit_spec", None)
    if checkpoint and built is not None and (built.in_chans, built.img_size) != (c, h):
        raise BenchError(f"model {entry.name}: input = \"{entry.input}\" but checkpoint {checkpoint} was built "
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


def planned_steps(spec: SweepSpec, entry: SweepModel, cuts: int) -> Counter:
    """How many steps of each kind the sweep of one model with `cuts` cuts runs."""
    return _model_steps(spec, entry, cuts) + _times(_unit_steps(spec), cuts * (1 + len(spec.defenses)))


def _model_steps(spec: SweepSpec, entry: SweepModel, cuts: int) -> Counter:
    """The steps of one model outside its units: train, tails, estimates, defenses."""
    return Counter(train=int(entry.checkpoint is None and entry.train_epochs > 0), tail=cuts + 1,
                   estimate=len(spec.estimate) * cuts * len(spec.precisions), defend=cuts * len(spec.defenses))


def _unit_steps(spec: SweepSpec) -> Counter:
    """The steps of one unit (a cut, or a cut's defense): every precision's export, profiles, emit, audits."""
    return _times(_per_precision(spec), len(spec.precisions))


def _units(spec: SweepSpec, cuts: dict[str, list[str]]) -> int:
    """How many units (export -> profile -> emit -> audit chains, one per cut and defense) the sweep has, counted
    as `planned_steps` counts them (a spec with a shipped ONNX model has no defenses: `SweepSpec` refuses them)."""
    return sum(len(cuts[m.name]) for m in spec.models) * (1 + len(spec.defenses))


class _Sweep(OnnxSteps):
    """The order of the steps (`model`, `_unit`) and which of them run (`step`); `SweepSteps` runs each one.

    `stage`: "all" (one process: every step), "prepare" (every step but the audits: the first part of a sweep
    shared by several processes, run by rank 0) or "audit" (the audits of this process's share of the units,
    `share` = (rank, processes): unit k goes to rank k mod processes; the other steps are read, not run).
    """

    def __init__(self, spec: SweepSpec, out: Path, store: ResultsStore, progress: Progress,
                 cuts: dict[str, list[str]], stage: str = "all", share: tuple[int, int] = (0, 1)) -> None:
        super().__init__(spec, out, progress)
        self.store, self.cuts, self.stage, self.share = store, cuts, stage, share
        self.units = 0  # units reached so far, in the sweep's fixed order
        planned = sum((planned_steps(spec, m, len(cuts[m.name])) for m in spec.models), Counter())
        if stage == "prepare":
            planned -= Counter(audit=planned["audit"])
        elif stage == "audit":
            mine = len(range(share[0], _units(spec, cuts), share[1]))
            planned = Counter(audit=mine * len(spec.precisions) * len(spec.decoders) if spec.audit else 0)
        self.clock = StepClock(planned, store.rows, spec.sha256)

    def run(self) -> None:
        self.progress.message(self.opening())
        for model in self.spec.models:
            self.model(model)
        self.progress.message(self.closing())

    def opening(self) -> str:
        if self.stage == "audit":
            rank, n = self.share
            return (f"auditing units {rank + 1}, {rank + 1 + n}, ... of {_units(self.spec, self.cuts)} (one in {n}): "
                    f"{self.clock.total} audit steps, kept where done already")
        kept = sum(self.clock.finished_before.values())
        return (f"sweep into {self.out}: {self.clock.total} steps" + (f", {kept} finished earlier (kept unless "
                f"their inputs changed)" if kept else "") + f"; {self.clock.time_left()}")

    def closing(self) -> str:
        failed = len(failed_steps(self.store.rows, self.spec.sha256))
        return (f"sweep done in {self.clock.elapsed()}: {self.clock.ran} steps run, {self.clock.reused} kept from "
                f"earlier runs, {failed} failed")

    # one step -------------------------------------------------------------------------------------------
    def step(self, fn, valid=None, inputs: dict | None = None, **key) -> SweepRow | None:
        """Run `fn()` (returning the row's fields) unless this step is done; record ok / skipped / failed.

        A finished row is kept only when it was made from the same `inputs` (name -> sha256 of the files the
        step reads: a re-exported bundle redoes every step that used it) and `valid(row)` says what it
        produced is still there (a deleted bundle is rebuilt). The row records its inputs.
        """
        inputs = inputs or {}
        done = self.store.find(**key)
        if self.stage == "audit" and key["step"] != "audit":  # rank 0 ran it just before: read its row
            return done if done is not None and done.finished else None
        if done is not None and done.finished and done.made_from(inputs) and (valid is None or not done.ok
                                                                            or valid(done)):
            self.clock.reached(key["step"], None)
            return done
        label = step_label(key)
        start = time.perf_counter()
        try:
            fields = fn()
            status = fields.pop("status", "ok")
        except (EdgesplitError, OSError) as exc:
            fields, status = {"reason": str(exc)}, "failed"
        row = self.store.append(SweepRow(**key, status=status, inputs=inputs,
                                         fields={**fields, "seconds": time.perf_counter() - start}))
        self.clock.reached(row.step, row.seconds)
        note = f" ({row.reason})" if status != "ok" and row.reason else ""
        self.progress.message(f"{self.clock.position()}: {label}: {status} in {row.seconds:.1f} s{note}; "
                              f"{self.clock.time_left()}")
        return row if row.finished else None

    def _exists(self, *fields_or_file):
        """A `valid` check: the paths a row names (relative to OUT) exist (a trailing file name inside a folder)."""
        names = [f for f in fields_or_file if "." not in f]
        inner = [f for f in fields_or_file if "." in f]

        def check(row: SweepRow) -> bool:
            return all((self.out / row.fields[n] / Path(*inner)).exists() if inner else
                       (self.out / row.fields[n]).exists() for n in names)

        return check

    def _bundle_unchanged(self, row: SweepRow) -> bool:
        """An export row still describes the head on disk (not deleted, not replaced by another export). An
        engine added by 'edgesplit bundle engine' rewrites the manifest but not the head: the export stands."""
        bundle_dir = self.out / row.fields["bundle"]
        if not (bundle_dir / "manifest.json").is_file():
            return False
        if "head_identity" in row.fields:
            return self.head_identity(bundle_dir) == row.fields["head_identity"]
        return self.digest(bundle_dir / "manifest.json") == row.fields.get("bundle_sha256")

    # the model ------------------------------------------------------------------------------------------
    def model(self, entry: SweepModel) -> None:
        if entry.onnx is not None:
            return self.shipped_model(entry)
        import torch

        import edgesplit.defenses  # noqa: F401 - registers the 'defense' model option
        from edgesplit.models import analyse, create_model

        c, h, _ = entry.input_shape
        cut_names = self.cuts[entry.name]
        checkpoint = entry.checkpoint_path
        if checkpoint is None and entry.train_epochs > 0:
            row = self.step(partial(self._train, entry), valid=self._exists("checkpoint"), step="train",
                            model=entry.name)
            if row is None:  # nothing of this model can run: its own steps, then its units
                self.clock.passed_over(_model_steps(self.spec, entry, len(cut_names)) - Counter(train=1))
                self._pass_over_units(len(cut_names) * (1 + len(self.spec.defenses)), _unit_steps(self.spec))
                return
            checkpoint = str(self.out / row.fields["checkpoint"])
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
        for profile in self.spec.estimate if self.stage != "audit" else ():
            self._estimates(entry, checkpoint, profile, cut_names)
        for cut in cuts:
            self._unit(entry, checkpoint, cut.name, cut.name, None, weights)
            for defense in self.spec.defenses:
                row = self.step(partial(self._defend, entry, checkpoint, cut.name, defense),
                                valid=self._exists("checkpoint"), inputs=uses, step="defend", model=entry.name,
                                cut=cut.name, defense=defense.label)
                if row is None:
                    self._pass_over_units(1, _unit_steps(self.spec))
                    continue
                self._unit(entry, str(self.out / row.fields["checkpoint"]), cut.name, row.fields["defended_cut"],
                           defense.label, f"defended checkpoint ({defense.label})")

    def shipped_model(self, entry: SweepModel) -> None:
        """A shipped ONNX model: tails (onnxruntime), estimates, then export -> profile -> emit -> audit per cut."""
        cut_names = self.cuts[entry.name]
        uses = self.model_inputs(entry, None)
        for cut in (None, *cut_names):
            self.step(partial(self._onnx_tail, entry, cut), inputs=uses, step="tail", model=entry.name,
                      cut=cut or "input")
        for profile in self.spec.estimate if self.stage != "audit" else ():
            self._estimates(entry, None, profile, cut_names)
        for cut in cut_names:
            self._unit(entry, None, cut, cut, None, f"shipped onnx ({entry.onnx_path.name})")

    def _pass_over_units(self, n: int, per_unit: Counter) -> None:
        """`n` units that will not be reached (what they depend on failed): numbered as if reached, so every
        process of a shared sweep keeps the same numbering, and counted as passed over by the process whose
        share they were."""
        first, self.units = self.units, self.units + n
        rank, processes = self.share if self.stage == "audit" else (0, 1)
        mine = sum(1 for k in range(first, first + n) if k % processes == rank)
        self.clock.passed_over(_times(per_unit, mine))

    def _unit(self, entry: SweepModel, checkpoint, cut: str, export_cut: str, defense: str | None, weights: str):
        """Export -> profile -> emit -> audit of one cut (of the undefended model, or of one defense).

        Each step names the sha256 of what it reads (checkpoint, bundle, feature files) as its inputs, so a
        changed input redoes every step downstream of it.
        """
        unit, self.units = self.units, self.units + 1
        if self.stage == "audit" and unit % self.share[1] != self.share[0]:
            return  # another process audits this unit
        fp32_attack = previous_attack = None
        tag = "" if defense is None else f"-{slug(defense)}"
        named = file_name(cut) + tag  # the feature and audit files' names
        per_precision = _per_precision(self.spec)
        for precision in self.spec.ordered_precisions:
            key = dict(model=entry.name, cut=cut, precision=precision, defense=defense)
            bundle = self.step(partial(self._export, entry, checkpoint, export_cut, precision, weights, tag),
                               valid=self._bundle_unchanged,
                               inputs={**self.model_inputs(entry, checkpoint), **self.export_settings(precision)},
                               step="export", **key)
            if bundle is None:
                self.clock.passed_over(per_precision - Counter(export=1))
                continue
            bundle_dir = self.out / bundle.fields["bundle"]
            for device in self.spec.devices:  # a profile depends on the whole manifest (an engine added: redone)
                for backend in self.spec.backends:
                    self.step(partial(self._profile, bundle_dir, backend, device, precision, checkpoint),
                              inputs={**self.inputs(bundle=bundle_dir / "manifest.json"),
                                      **self.profile_settings(backend)}, step="profile",
                              backend=backend, device=device, **key)
            uses = {"bundle": self.head_identity(bundle_dir)}
            if not self.spec.audit:
                continue
            emitted = self.step(partial(self._emit, bundle_dir, entry, named, precision),
                                valid=self._exists("attack_features", "test_features"), inputs=uses, step="emit",
                                backend="ort", device="local", **key)
            if emitted is None:
                self.clock.passed_over(Counter(audit=per_precision["audit"]))
                continue
            attack, test = (self.out / emitted.fields[f"{split}_features"] for split in ("attack", "test"))
            if precision == "fp32":
                fp32_attack = attack
            transfer = fp32_attack if precision != "fp32" else None
            audit_uses = {**uses, **self.inputs(attack_features=attack, test_features=test,
                                                transfer_features=transfer, start_features=previous_attack)}
            if self.stage == "prepare":  # the processes share the audits next
                continue
            for decoder in self.spec.decoders:
                self.step(partial(self._audit, bundle_dir, emitted, decoder, fp32_attack, previous_attack, entry,
                                  named, precision), valid=self._exists("audit"), inputs=audit_uses,
                          step="audit", decoder=decoder, **key)
            previous_attack = attack  # the next precision's decoders start here

    def _estimates(self, entry: SweepModel, checkpoint, profile: str, cut_names: list[str]) -> None:
        """One estimate row per cut x precision on board `profile` (one roofline pass serves them all)."""
        from edgesplit.bench.cut_estimates import estimate_cuts

        device, uses = f"estimate:{profile}", self.model_inputs(entry, checkpoint)
        keys = [dict(step="estimate", model=entry.name, cut=n, precision=p, device=device)
                for n in cut_names for p in self.spec.precisions]
        if all(self.store.done(**k) and self.store.find(**k).made_from(uses) for k in keys):
            rows, error = [], None  # every row is kept: step() only counts them
        else:
            try:
                rows, error = estimate_cuts(entry.name, self.shape_of(entry), profile, self.spec.precisions,
                                            checkpoint, cut_points=self.cut_points(entry, cut_names)), None
            except EdgesplitError as exc:
                rows, error = [], exc
        by_key = {(r["cut"], r["precision"]): r for r in rows}
        for k in keys:
            self.step(partial(estimate_fields, by_key.get((k["cut"], k["precision"])), error), inputs=uses, **k)

