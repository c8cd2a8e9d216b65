"""Bundles: a folder with `head.onnx` (+ optional engine, calibration cache, fidelity report) and `manifest.json`.

The manifest lists the sha256 of every file and a digest of itself; `verify_bundle` recomputes them, checks
the manifest's input/output records against the ONNX graph, and refuses a bundle that was changed or is
incomplete. The digest catches accidental change only: anyone can edit a manifest and re-hash it. With a
user's secret key, `signature.json` (HMAC-SHA256 over the digest) catches deliberate edits too.
Torch-free: the device runner uses this module as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from edgesplit.errors import BundleError
from edgesplit.export.wire import WireFormat

SCHEMA = "edgesplit.bundle"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
HEAD = "head.onnx"
SIGNATURE = "signature.json"
SIGNATURE_ALGORITHM = "hmac-sha256"
MIN_KEY_BYTES = 16


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk: its folder and parsed manifest."""

    path: Path
    manifest: dict

    @property
    def onnx_path(self) -> Path:
        return self.path / HEAD

    @property
    def wire(self) -> WireFormat:
        return WireFormat.from_dict(self.manifest["wire"])

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    @property
    def input(self) -> dict:
        return self.manifest["input"]

    @property
    def output(self) -> dict:
        return self.manifest["output"]

    @cached_property
    def sha256(self) -> str:
        """Identity of the bundle: the hash of its manifest (which pins every file's hash); read once."""
        return sha256_file(self.path / MANIFEST)

    def file(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise BundleError(f"bundle {self.path} has no file {name!r} (it has {', '.join(self.manifest['files'])})")
        return self.path / name

    def engines(self) -> dict[str, dict]:
        """Engine file name -> its build record (TensorRT version, GPU, compute capability)."""
        return dict(self.manifest.get("engines") or {})


def manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON without its own `digest` field (detects edits to it)."""
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_manifest(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"bundle {path} does not exist or is not a folder: pass the folder 'edgesplit export' wrote")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{path} is not a bundle: it has no {MANIFEST}")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mpath} is not valid JSON ({exc}): the bundle is corrupt, re-export it") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise BundleError(f"{mpath} is not an edgesplit bundle manifest")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(f"bundle {path} has schema version {manifest.get('schema_version')}; this edgesplit "
                          f"reads {SCHEMA_VERSION}: re-export it with this version")
    if not isinstance(manifest.get("files"), dict) or HEAD not in manifest["files"]:
        raise BundleError(f"{mpath} lists no {HEAD}: the bundle is incomplete, re-export it")
    return manifest


def verify_bundle(path: str | os.PathLike, key: bytes | None = None) -> Bundle:
    """Recompute every file's sha256 and size against the manifest, check the manifest against the graph and,
    with a `key`, the bundle's signature; raise BundleError on any difference."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest.get("digest") != manifest_digest(manifest):
        raise BundleError(f"bundle {path}: manifest.json was edited after export (its digest does not match); "
                          f"re-export or re-copy the bundle")
    for name, record in manifest["files"].items():
        fpath = path / name
        if Path(name).name != name or name in ("", ".", "..") or "\\" in name:  # bundles are flat folders
            raise BundleError(f"manifest of {path} names an unsafe file path {name!r}: refusing the bundle")
        if not fpath.is_file():
            raise BundleError(f"bundle {path} is incomplete: {name} is missing; re-export or re-copy the bundle")
        size = fpath.stat().st_size
        if size != record.get("bytes"):
            raise BundleError(f"bundle {path}: {name} has {size} bytes, the manifest says {record.get('bytes')} "
                              f"(truncated or modified); re-export or re-copy the bundle")
        digest = sha256_file(fpath)
        if digest != record.get("sha256"):
            raise BundleError(f"bundle {path}: {name} does not match its sha256 in the manifest (modified after "
                              f"export); re-export or re-copy the bundle")
    check_manifest_against_graph(path, manifest)
    if key is not None:
        check_signature(path, manifest, key)
    return Bundle(path, manifest)


def load_bundle(path: str | os.PathLike | Bundle, verify: bool = True, key: bytes | None = None) -> Bundle:
    """Open a bundle; by default verify all hashes first (a runtime never runs an unverified bundle).

    A `Bundle` (already verified when it was loaded) is returned as it is, so callers can pass either;
    with a `key`, its signature is checked too.
    """
    if isinstance(path, Bundle):
        if key is not None:
            check_signature(path.path, path.manifest, key)
        return path
    if verify or key is not None:
        return verify_bundle(path, key)
    return Bundle(Path(path), read_manifest(path))


# the manifest against the graph ------------------------------------------------------------------------------
def graph_io(onnx_path: str | os.PathLike) -> tuple[list[dict], list[dict]] | None:
    """The graph's (inputs, outputs) as {name, shape, dtype}: shape None where undeclared, a dim None where
    dynamic. Read with onnx (the graph only, external weights not loaded); on a device without onnx, with
    onnxruntime; None where neither is installed (a TensorRT-only board: the file hashes still hold)."""
    try:
        import onnx
    except ImportError:
        return _graph_io_onnxruntime(onnx_path)
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError, OSError: a file that is not an ONNX model
        raise BundleError(f"{onnx_path} is not a readable ONNX model ({type(exc).__name__}): re-export the "
                          f"bundle") from None
    initializers = {i.name for i in model.graph.initializer}
    inputs = [_io_record(i) for i in model.graph.input if i.name not in initializers]
    return inputs, [_io_record(o) for o in model.graph.output]


def _io_record(value_info) -> dict:
    import onnx

    tensor = value_info.type.tensor_type
    shape = None
    if tensor.HasField("shape"):
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
    except (KeyError, ValueError, TypeError):
        dtype = f"ONNX element type {tensor.elem_type}"
    return {"name": value_info.name, "shape": shape, "dtype": dtype}


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
              "tensor(int8)": "int8"}


def _graph_io_onnxruntime(onnx_path) -> tuple[list[dict], list[dict]] | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's Fail, InvalidGraph...
        raise BundleError(f"{onnx_path} cannot be opened by onnxruntime ({type(exc).__name__}): re-export the "
                          f"bundle") from None

    def record(arg) -> dict:
        shape = None if arg.shape is None else [d if isinstance(d, int) else None for d in arg.shape]
        return {"name": arg.name, "shape": shape, "dtype": _ORT_TYPES.get(arg.type, arg.type)}

    return [record(a) for a in session.get_inputs()], [record(a) for a in session.get_outputs()]


def _shape_mismatch(declared, actual: list | None) -> bool:
    """True when the manifest's shape cannot be the graph's: another rank, or a fixed size that differs."""
    if not isinstance(declared, list):
        return True
    if actual is None:  # the graph does not declare a shape: nothing to compare
        return False
    if len(declared) != len(actual):
        return True
    return any(g is not None and d != g for d, g in zip(declared, actual, strict=True))


def _numel(dims) -> int | None:
    n = 1
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool):
            return None
        n *= d
    return n


_ITEMSIZE = {"float32": 4, "float16": 2, "uint8": 1, "int8": 1}
_REEXPORT = "re-export the bundle (its manifest was edited and re-hashed, or written by another tool)"


def check_manifest_against_graph(path: str | os.PathLike, manifest: dict) -> None:
    """The manifest's input, output and wire records must describe head.onnx's declared I/O: a manifest edited
    and re-hashed so that it lies about a shape or dtype is refused, naming the first difference."""
    path = Path(path)
    io = graph_io(path / HEAD)
    if io is None:  # neither onnx nor onnxruntime here: nothing can read the graph
        return
    for role, declared in zip(("input", "output"), io, strict=True):
        _check_io_record(path, role, manifest.get(role), declared)
    wire, out_dtype = manifest.get("wire"), manifest["output"]["dtype"]
    wire_dtype = wire.get("dtype") if isinstance(wire, dict) else None
    if wire_dtype != out_dtype:
        raise BundleError(f"bundle {path}: the manifest says wire dtype {wire_dtype}, {HEAD} emits {out_dtype}: "
                          f"{_REEXPORT}")
    per_sample = _numel(manifest["output"]["shape"][1:])
    if per_sample is not None and wire.get("bytes_per_sample") != per_sample * _ITEMSIZE.get(out_dtype, 0):
        raise BundleError(f"bundle {path}: the manifest says {wire.get('bytes_per_sample')} wire bytes per sample, "
                          f"its output shape {manifest['output']['shape']} in {out_dtype} makes "
                          f"{per_sample * _ITEMSIZE.get(out_dtype, 0)}: {_REEXPORT}")


def _check_io_record(path: Path, role: str, record, declared: list[dict]) -> None:
    if not isinstance(record, dict):
        raise BundleError(f"bundle {path}: manifest.json has no {role} record: {_REEXPORT}")
    graph = next((g for g in declared if g["name"] == record.get("name")), None)
    if graph is None:
        names = ", ".join(repr(g["name"]) for g in declared)
        raise BundleError(f"bundle {path}: the manifest's {role} {record.get('name')!r} is not an {role} of "
                          f"{HEAD} (it has {names}): {_REEXPORT}")
    if record.get("dtype") != graph["dtype"]:
        raise BundleError(f"bundle {path}: the manifest says {role} dtype {record.get('dtype')}, {HEAD} declares "
                          f"{graph['dtype']}: {_REEXPORT}")
    if _shape_mismatch(record.get("shape"), graph["shape"]):
        raise BundleError(f"bundle {path}: the manifest says {role} shape {record.get('shape')}, {HEAD} declares "
                          f"{graph['shape']}: {_REEXPORT}")


# signing with a user's key ----------------------------------------------------------------------------------
def read_key(path: str | os.PathLike) -> bytes:
    """A signing key: the bytes of a secret file (at least MIN_KEY_BYTES; 'openssl rand -hex 32 > key')."""
    path = Path(path)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read key file {path} ({exc.strerror or exc}): pass a readable file that holds "
                          f"your secret key") from None
    if len(key) < MIN_KEY_BYTES:
        raise BundleError(f"key file {path} holds {len(key)} bytes; a key needs at least {MIN_KEY_BYTES}: make "
                          f"one with 'openssl rand -hex 32 > {path.name}'")
    return key


def key_id(key: bytes) -> str:
    """Names a key without revealing it: the first 16 hex digits of its sha256."""
    return hashlib.sha256(key).hexdigest()[:16]


def signature_record(manifest: dict, key: bytes) -> dict:
    """signature.json: HMAC-SHA256 of the manifest digest (which pins every file's sha256) under `key`."""
    digest = str(manifest["digest"])
    return {"algorithm": SIGNATURE_ALGORITHM, "key_id": key_id(key), "digest": digest,
            "signature": hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()}


def check_signature(path: str | os.PathLike, manifest: dict, key: bytes) -> None:
    """Refuse an unsigned bundle, one signed with another key, or one whose manifest changed after signing."""
    path = Path(path)
    try:
        record = json.loads((path / SIGNATURE).read_text())
    except FileNotFoundError:
        raise BundleError(f"bundle {path} is not signed (it has no {SIGNATURE}) and a key was given: sign it "
                          f"with 'edgesplit export --sign-key' or 'edgesplit bundle pack --sign-key'") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or record.get("algorithm") != SIGNATURE_ALGORITHM:
        raise BundleError(f"bundle {path}: {SIGNATURE} is not an {SIGNATURE_ALGORITHM} signature: refusing the "
                          f"bundle; re-copy it from its source")
    if record.get("key_id") != key_id(key):
        raise BundleError(f"bundle {path} was signed with key {record.get('key_id')}, not this key "
                          f"({key_id(key)}): pass the key it was signed with")
    given = str(record.get("signature")).encode("utf-8", "replace")  # bytes: str compare_digest rejects non-ASCII
    if not hmac.compare_digest(given, signature_record(manifest, key)["signature"].encode()):
        raise BundleError(f"bundle {path}: its signature does not match the manifest (changed after signing): "
                          f"refusing the bundle; re-copy it from its source")


# writing ----------------------------------------------------------------------------------------------------
def current_umask() -> int:
    """The process umask (os.umask can only be read by setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder `tmp` to `out` (replacing an old `out`), with the user's umask applied:
    tempfile.mkdtemp makes folders 0700, which would hide a bundle from the other users of a board."""
    os.chmod(tmp, 0o777 & ~current_umask())
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    os.replace(out, old / out.name)
    try:
        os.replace(tmp, out)
    except BaseException:  # the old bundle goes back where it was
        os.replace(old / out.name, out)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_output_folder(out_dir: str | os.PathLike, force: bool) -> Path:
    """Refuse to overwrite a non-empty folder: a bundle unless `force`, anything else (a project folder given
    as --out by mistake) even with `force`, since replacing it would delete it."""
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise BundleError(f"output {out} exists and is not a folder: choose another --out")
        if any(out.iterdir()) and not (out / MANIFEST).exists():
            raise BundleError(f"output folder {out} already holds other files (it is not a bundle): choose another "
                              f"--out, or empty it yourself; --force only replaces a bundle")
        if any(out.iterdir()) and not force:
            raise BundleError(f"output folder {out} already holds a bundle: pass --force to replace it, "
                              f"or choose another --out")
    return out


def write_bundle(out_dir: str | os.PathLike, files: dict[str, str | os.PathLike], manifest: dict,
                 force: bool = False, sign_key: bytes | None = None) -> Bundle:
    """Write `files` (bundle name -> source path) and the manifest into `out_dir`, atomically.

    Everything goes to a temporary folder beside `out_dir`, which is renamed into place at the end, so an
    interrupted export leaves nothing half-written. An existing different bundle is kept unless `force`.
    With `sign_key`, signature.json (see `signature_record`) is written beside the manifest.
    """
    out = check_output_folder(out_dir, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        records = {}
        for name, src in sorted(files.items()):
            shutil.copyfile(src, tmp / name)
            records[name] = {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size}
        manifest = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **manifest, "files": records}
        manifest["digest"] = manifest_digest(manifest)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        if sign_key is not None:
            (tmp / SIGNATURE).write_text(json.dumps(signature_record(manifest, sign_key), indent=2) + "\n")
        move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Bundle(out, manifest)


def add_files(bundle: Bundle, files: dict[str, str | os.PathLike], manifest_updates: dict) -> Bundle:
    """Add files (e.g. a TensorRT engine built later on the device) and re-hash the manifest atomically.

    A user's signature.json no longer matches the new manifest, so it is not carried over: sign again."""
    verified = verify_bundle(bundle.path)
    current = {name: verified.path / name for name in verified.manifest["files"]}
    manifest = {k: v for k, v in verified.manifest.items()
                if k not in ("schema", "schema_version", "files", "digest")}
    for key, value in manifest_updates.items():
        if isinstance(value, dict) and isinstance(manifest.get(key), dict):
            manifest[key] = {**manifest[key], **value}
        else:
            manifest[key] = value
    staging = Path(tempfile.mkdtemp(prefix=".add.", dir=bundle.path.parent))
    try:
        for name, src in {**current, **files}.items():
            shutil.copyfile(src, staging / name)
        return write_bundle(bundle.path, {n: staging / n for n in {**current, **files}}, manifest, force=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
