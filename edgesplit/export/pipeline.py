"""`export_bundle(config, out_dir)`: model -> head -> ONNX (fp32/fp16/int8) -> wire -> fidelity -> bundle."""

from __future__ import annotations

import datetime as dt
import platform
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import onnx

from edgesplit.errors import ExportError
from edgesplit.export import onnx_export, wire_graph
from edgesplit.export.bundle import HEAD, Bundle, check_output_folder, sha256_file, write_bundle
from edgesplit.export.calibration import calibrate, tensor_range
from edgesplit.export.config import MIN_CALIB_SAMPLES, ExportConfig
from edgesplit.export.fidelity import measure_fidelity
from edgesplit.export.int8_measure import LocalMeasurer, Measurer
from edgesplit.export.int8_regions import name_nodes
from edgesplit.export.int8_scope import check_measurable, choose_scope
from edgesplit.export.int8_targets import scheme_for
from edgesplit.export.quantize import preprocess, quantize_cached, quantize_int8
from edgesplit.export.sources import GraphHead, HeadSource, TorchHead
from edgesplit.progress import Progress, resolve


def export_bundle(config: ExportConfig, out_dir: str | Path, force: bool = False,
                  progress: Progress | None = None, sign_key: bytes | None = None,
                  source: HeadSource | None = None, measurer: Measurer | None = None) -> Bundle:
    """Export one head as a bundle folder; nothing is written to `out_dir` unless everything succeeded.

    The head comes from `source` when given (a sweep passes one `GraphHead` to every precision of a cut),
    otherwise from `config`: a shipped ONNX file (`config.model` ending in .onnx) is cut at the tensor
    `config.cut`; a model name is built (with its checkpoint) and its head exported with torch.onnx.
    With `sign_key` (`signing.read_key`), the bundle carries signature.json (HMAC-SHA256 of its manifest).
    `measurer` is where `int8_scope = "auto"` measures (default: this host; `runtime.remote_measure.SshMeasurer`
    for a board, whose INT8 layout `target = "auto"` then takes); it is closed here, and unused otherwise."""
    auto = config.precision == "int8" and config.int8_scope == "auto"
    measurer = (measurer or LocalMeasurer()) if auto else None
    try:
        return _export(config, out_dir, force, resolve(progress), sign_key, source, measurer)
    finally:
        if measurer is not None:
            measurer.close()


def _export(config: ExportConfig, out_dir, force: bool, progress: Progress, sign_key: bytes | None,
            source: HeadSource | None, measurer: Measurer | None) -> Bundle:
    check_output_folder(out_dir, force)  # before any work: never compute a bundle only to refuse it
    if config.format == "tensorrt":
        from edgesplit.runners.tensorrt import import_tensorrt

        import_tensorrt()  # fail before any work when TensorRT is absent
    auto = measurer is not None  # an int8 head whose scope is measured
    check_measurable(config, measurer)  # an unreachable board, or a layout for another machine: before any work
    target = config.target
    if target == "auto":
        target = "tensorrt" if config.format == "tensorrt" else measurer.target if measurer else "auto"
    scheme = scheme_for(target)
    source = source or head_source(config)
    shape = source.input_shape
    calib_images, calib_info = _load(config, config.calib_split, config.calib_size, shape) \
        if config.needs_calibration else (None, None)
    if calib_images is not None and len(calib_images) < MIN_CALIB_SAMPLES:
        raise ExportError(f"the calibration set has only {len(calib_images)} samples ({config.calib_data}/"
                          f"{config.calib_split}): INT8 calibration needs at least {MIN_CALIB_SAMPLES}")
    eval_images, eval_info = _load(config, config.eval_split, config.eval_size, shape)
    eval_labels = eval_info.pop("labels")

    with tempfile.TemporaryDirectory(prefix="edgesplit-export-") as tmp:
        tmp = Path(tmp)
        with progress.task("exporting ONNX", total=None):
            fp32 = source.write_fp32_head(tmp / "fp32.onnx", config.opset)
        ranges, cache = None, None
        if config.precision == "int8":
            pre = preprocess(fp32, tmp / "pre.onnx")
            if auto:
                name_nodes(pre)  # quantize_static leaves nodes float by name
            ranges, cache = quantize_int8(pre, tmp / "head.onnx", calib_images, config.calib_method, scheme, tmp,
                                          config.calib_percentile, progress)
        elif config.precision == "fp16":
            onnx_export.convert_fp16(fp32, tmp / "head.onnx")
        else:
            (tmp / "head.onnx").write_bytes(fp32.read_bytes())
        out_range = None
        if config.wire_format == "int8":
            if ranges is None:
                ranges = calibrate(fp32, calib_images, config.calib_method, scheme.activation_symmetric,
                                   config.calib_percentile, progress=progress)
            out_range = tensor_range(ranges, onnx_export.OUTPUT_NAME)
        int8_dtype = "uint8" if scheme.activation_type == "QUInt8" else "int8"
        for_tensorrt = config.format == "tensorrt" or scheme.target == "tensorrt"  # per-tensor activation scales only
        input_dtype = "float16" if config.precision == "fp16" else "float32"

        def finish(graph: Path, head: Path) -> tuple:
            """The graph with its wire set, checked, and a function measuring its fidelity on the held-out split
            (a candidate of `auto` may never need it)."""
            model, wire = wire_graph.set_wire(onnx.load(str(graph)), config.wire_format, out_range, int8_dtype,
                                              scheme.activation_symmetric, per_axis_ok=not for_tensorrt)
            onnx.save(model, str(head))
            onnx_export.check(head)
            return model, wire, partial(measure_fidelity, head, wire, input_dtype, source, eval_images, eval_labels)

        scope = {"asked": "all", "chosen": "all"} if config.precision == "int8" else None
        if auto:
            with progress.task(f"measuring INT8 against FP32 on {measurer.where}", total=None):
                choice = choose_scope(fp32, pre, tmp / "head.onnx", tmp, lambda dst, exclude: quantize_cached(
                    pre, dst, cache, config.calib_method, scheme, exclude), finish, shape, measurer)
            (tmp / HEAD).write_bytes(choice.chosen.path.read_bytes())
            model_proto, wire, fidelity, scope = (choice.chosen.model, choice.chosen.wire,
                                                  dict(choice.chosen.measured), choice.record)
        else:
            with progress.task("checking fidelity", total=None):
                model_proto, wire, measure = finish(tmp / "head.onnx", tmp / HEAD)
                fidelity = measure()
        fidelity["fp32_head_onnx_bytes"] = fp32.stat().st_size
        files = {HEAD: tmp / HEAD}
        (tmp / "fidelity.json").write_text(_json(fidelity))
        files["fidelity.json"] = tmp / "fidelity.json"
        engines = {}
        if config.format == "tensorrt":
            from edgesplit.runners.tensorrt import build_engine

            engine_source = tmp / HEAD  # not `source`: the head source names the manifest's model and cut
            if config.precision == "int8" and config.trt_int8 == "implicit":
                # TensorRT's own calibrator quantizes a float network: build from the FP32 graph (same wire).
                float_graph, _ = wire_graph.set_wire(onnx.load(str(fp32)), config.wire_format, out_range,
                                                     int8_dtype, scheme.activation_symmetric, per_axis_ok=False)
                engine_source = tmp / "engine_source.onnx"
                onnx.save(float_graph, str(engine_source))
            record = build_engine(engine_source, tmp, config.precision, int8_mode=config.trt_int8,
                                  calib_images=calib_images, input_shape=shape, max_batch=config.max_batch,
                                  workspace_mb=config.trt_workspace_mb, input_dtype=input_dtype)
            files[record["file"]] = tmp / record["file"]
            if record.get("calibration_cache"):
                files[record["calibration_cache"]] = tmp / record["calibration_cache"]
            engines[record["file"]] = record
        stochastic = any(n.op_type.startswith("Random") for n in model_proto.graph.node)
        manifest = _manifest(config, source, shape, input_dtype, wire, scheme, calib_info, fidelity, engines,
                             int8=config.precision == "int8" or config.wire_format == "int8", stochastic=stochastic,
                             scope=scope)
        return write_bundle(out_dir, files, manifest, force=force, sign_key=sign_key)


def _load(config: ExportConfig, split: str, limit: int, shape) -> tuple[np.ndarray, dict]:
    from edgesplit.data.for_input import load_split_for

    ds = load_split_for(shape, config.calib_data, root=config.calib_root, split=split, seed=config.seed, limit=limit)
    images, labels = ds.tensors()
    info = {"data": config.calib_data, "split": split, "size": int(len(ds)), "seed": config.seed,
            "ids_sha256": _ids_hash(ds.ids), "labels": labels.numpy()}
    return images.numpy().astype(np.float32), info


def _ids_hash(ids) -> str:
    import hashlib

    return hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()


def head_source(config: ExportConfig) -> HeadSource:
    """The head `config` asks for: a shipped ONNX file cut at a tensor, or a PyTorch model's head."""
    if config.is_onnx:
        return GraphHead.from_file(config.model, config.cut, config.input_shape)
    import edgesplit.defenses  # noqa: F401 - registers the 'defense' model option
    from edgesplit.models import create_model

    c, h, w = config.input_shape or (None, None, None)
    model = create_model(config.model, num_classes=config.num_classes, in_chans=c, img_size=h,
                         checkpoint=config.checkpoint, seed=config.seed)  # seeded: random-init heads reproduce
    return TorchHead(model, config.cut, torch_model_record(config, model.edgesplit_spec))


def torch_model_record(config: ExportConfig, spec) -> dict:
    """The manifest's `model` record of a PyTorch model: its spec, and the checkpoint by name and sha256."""
    return {"name": spec.name, "spec": spec.to_dict(),
            "weights": "checkpoint" if config.checkpoint else f"random-init (torch seed {config.seed})",
            "checkpoint": Path(config.checkpoint).name if config.checkpoint else None,
            "checkpoint_sha256": sha256_file(config.checkpoint) if config.checkpoint else None}


def _manifest(config, source, shape, input_dtype, wire, scheme, calib_info, fidelity, engines, int8,
              stochastic=False, scope=None) -> dict:
    import onnxruntime

    import edgesplit

    cut = source.cut
    numel = cut.numel
    calibration = None
    if calib_info is not None:
        calibration = {**{k: v for k, v in calib_info.items() if k != "labels"}, "method": config.calib_method,
                       **({"percentile": config.calib_percentile} if config.calib_method == "percentile" else {})}
    return {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": source.model_record(),
        "cut": cut.to_dict(),
        "input": {"name": onnx_export.INPUT_NAME, "shape": [None, *shape], "dtype": input_dtype, "layout": "NCHW",
                  "range": [0.0, 1.0],
                  "normalization": {"mean": [0.0] * shape[0], "std": [1.0] * shape[0],
                                    "note": "feed RGB/gray images scaled to [0, 1]; the model was trained so"}},
        "output": {"name": onnx_export.OUTPUT_NAME, "shape": [None, *cut.shape], "dtype": wire.dtype},
        "wire": {**wire.to_dict(), "scheme": "per-tensor" if wire.format == "int8" else None,
                 "bytes_per_sample": numel * wire.itemsize},
        "precision": config.precision,
        "quantization": ({"format": "QDQ", "per_channel_weights": config.precision == "int8",
                          **scheme.to_dict(), **({"scope": scope} if scope else {})} if int8 else None),
        "calibration": calibration,
        "evaluation": {"data": config.calib_data, "split": config.eval_split, "size": fidelity["samples"]},
        "fidelity": {k: fidelity[k] for k in ("max_abs_error", "mean_cosine", "snr_db", "tail_top1_fp32_features",
                                              "tail_top1_exported_features", "head_onnx_bytes")},
        "engines": engines,
        "defense": source.spec.kwargs.get("defense") if source.spec is not None else None,
        "stochastic": stochastic,  # the head draws random numbers (noise, dropout): every call differs
        "export": {**config.to_dict(), "checkpoint": Path(config.checkpoint).name if config.checkpoint else None,
                   "model": Path(config.model).name if config.is_onnx else config.model,
                   "calib_root": None if config.calib_root is None else "(local copy)"},  # no machine paths
        "tools": {"edgesplit": edgesplit.__version__, **_torch_version(), "onnx": onnx.__version__,
                  "onnxruntime": onnxruntime.__version__, "python": platform.python_version(),
                  "host": platform.machine()},
    }


def _torch_version() -> dict:
    import sys

    torch = sys.modules.get("torch")  # recorded where PyTorch took part; an ONNX-only export needs none
    return {"torch": torch.__version__} if torch is not None else {}


def _json(obj) -> str:
    import json

    return json.dumps(obj, indent=2) + "\n"
