"""Signing a bundle with a user's secret key: signature.json holds an HMAC-SHA256 of the manifest digest
(which pins every file's sha256), so a bundle edited and re-hashed by someone without the key is refused.
Torch-free."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from edgesplit.errors import BundleError

SIGNATURE = "signature.json"
SIGNATURE_ALGORITHM = "hmac-sha256"
MIN_KEY_BYTES = 16


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
