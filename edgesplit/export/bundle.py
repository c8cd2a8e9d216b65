"""Bundles: a folder with `head.onnx` (+ optional engine, calibration cache, fidelity report) and `manifest.json`.

The manifest lists the sha256 of every file and a digest of itself; `verify_bundle` recomputes them, checks
the manifest's input/output records against the ONNX graph, and refuses a bundle that was changed or is
incomplete. The digest catches accidental change only: anyone can edit a manifest and re-hash it. With a
user's secret key, `signature.json` (HMAC-SHA256 over the digest) catches deliberate edits too.
Torch-free: the device runner uses this module as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from edgesplit.digest import sha256_file
from edgesplit.errors import BundleError
from edgesplit.export.graph_io import check_manifest_against_graph
from edgesplit.export.signing import SIGNATURE, check_signature, signature_record
from edgesplit.export.wire import WireFormat

SCHEMA = "edgesplit.bundle"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
HEAD = "head.onnx"


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
    check_manifest_against_graph(path, manifest, HEAD)
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
