"""One archive per bundle for copying to a board; unpacking refuses anything but plain files inside it."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from edgesplit.atomic import atomic_path
from edgesplit.errors import BundleError
from edgesplit.export.bundle import (
    check_output_folder,
    load_bundle,
    move_into_place,
    verify_bundle,
)
from edgesplit.export.signing import SIGNATURE, signature_record


def pack_bundle(bundle_dir, archive: str | os.PathLike, sign_key: bytes | None = None) -> Path:
    """Verify the bundle (unless given a loaded `Bundle`), then write it as a .tar.gz of `<name>/<file>`.

    With `sign_key` the archive carries a signature.json made with it (the bundle folder is left as it is);
    without, the bundle's own signature.json, if it has one, travels with it."""
    bundle = load_bundle(bundle_dir)
    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(archive) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for name in ["manifest.json", *sorted(bundle.manifest["files"])]:
            tar.add(bundle.path / name, arcname=f"{bundle.path.name}/{name}", recursive=False)
        if sign_key is not None:
            data = (json.dumps(signature_record(bundle.manifest, sign_key), indent=2) + "\n").encode()
            member = tarfile.TarInfo(f"{bundle.path.name}/{SIGNATURE}")
            member.size, member.mode = len(data), 0o644
            tar.addfile(member, io.BytesIO(data))
        elif (bundle.path / SIGNATURE).is_file():
            tar.add(bundle.path / SIGNATURE, arcname=f"{bundle.path.name}/{SIGNATURE}", recursive=False)
    return archive


def unpack_bundle(archive: str | os.PathLike, dest: str | os.PathLike, force: bool = False,
                  key: bytes | None = None) -> Path:
    """Extract a packed bundle into `dest` (the bundle folder itself) and verify it (and, with `key`, its
    signature).

    Absolute paths, `..`, links, devices and nested folders are refused before anything is written; the
    members go to a temporary folder beside `dest`, which becomes `dest` only once it verified, so a bad
    archive leaves `dest` as it was.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the with-block below
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{archive} is not a readable bundle archive ({exc}): pack it with "
                          f"'edgesplit bundle pack'") from None
    with tar:
        members = tar.getmembers()
        names = []
        for member in members:
            parts = Path(member.name).parts
            if member.name.startswith(("/", "\\")) or Path(member.name).is_absolute() or ".." in parts:
                raise BundleError(f"{archive} contains an unsafe path {member.name!r}: refusing to unpack it")
            if member.isdir():
                continue
            if not member.isfile():
                raise BundleError(f"{archive} contains {member.name!r}, which is not a plain file: refusing to unpack")
            if len(parts) != 2:
                raise BundleError(f"{archive} member {member.name!r} is not <bundle>/<file>: not a packed bundle")
            names.append((member, parts[1]))
        if not any(name == "manifest.json" for _, name in names):
            raise BundleError(f"{archive} holds no manifest.json: not a packed bundle")
        check_output_folder(dest, force)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            for member, name in names:
                with tar.extractfile(member) as src, open(staging / name, "wb") as out:
                    shutil.copyfileobj(src, out)
            _verify_staged(staging, archive, key)
            move_into_place(staging, dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return dest


def _verify_staged(staging: Path, archive: Path, key: bytes | None) -> None:
    """verify_bundle on the staging folder, its errors naming the archive (the user never sees the folder)."""
    try:
        verify_bundle(staging, key)
    except BundleError as exc:
        raise BundleError(str(exc).replace(str(staging), str(archive))) from None
