"""One archive per bundle for copying to a board; unpacking refuses anything but plain files inside it."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from edgesplit.atomic import atomic_path
from edgesplit.errors import BundleError
from edgesplit.export.bundle import check_output_folder, load_bundle, verify_bundle


def pack_bundle(bundle_dir, archive: str | os.PathLike) -> Path:
    """Verify the bundle (unless given a loaded `Bundle`), then write it as a .tar.gz of `<name>/<file>`."""
    bundle = load_bundle(bundle_dir)
    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(archive) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for name in ["manifest.json", *sorted(bundle.manifest["files"])]:
            tar.add(bundle.path / name, arcname=f"{bundle.path.name}/{name}", recursive=False)
    return archive


def unpack_bundle(archive: str | os.PathLike, dest: str | os.PathLike, force: bool = False) -> Path:
    """Extract a packed bundle into `dest` (the bundle folder itself) and verify it.

    Absolute paths, `..`, links, devices and nested folders are refused before anything is written.
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
        dest.mkdir(parents=True, exist_ok=True)
        for member, name in names:
            src = tar.extractfile(member)
            with open(dest / name, "wb") as out:
                out.write(src.read())
    verify_bundle(dest)
    return dest
