"""Signatures of a ``.cloacina`` archive: Ed25519 over the exact bytes of ``manifest.json``.

The manifest pins every wheel's size and sha256, so a signature over its bytes covers the whole
archive. Each signature is its own member, ``signatures/<fingerprint>.json``, after the manifest
(the writer puts them last, sorted), so adding one never changes the manifest and signed archives
stay byte-reproducible (Ed25519 signatures are deterministic). An archive may carry several, one
per key. A member holds one JSON object:

``{"algorithm": "ed25519", "fingerprint": HEX, "key_name": NAME, "manifest_sha256": HEX,
"public_key": BASE64 (raw 32 bytes), "signature": BASE64 (64 bytes), "signed_member":
"manifest.json", "version": 1}``

``parse_signature`` checks a member's form without any cryptography (``inspect`` of an unsigned
archive never imports it); ``verify`` checks the signature itself. ``key_name`` is what the signer
called the key: informational only (a tenant trusts fingerprints, under its own names).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cloacina_workflow.limits import LimitExceeded, loads_limited

from ._errors import ArchiveError
from ._keys import KEY_NAME, fingerprint_of

if TYPE_CHECKING:
    from ._keys import SigningKey
    from ._reader import Archive

__all__ = [
    "MAX_SIGNATURES",
    "SIGNATURES_DIR",
    "SignatureCheck",
    "SignatureEntry",
    "check_signatures",
    "parse_signature",
    "sign_archive",
    "signature_member",
    "verify",
]

#: Where signatures live inside the archive: ``signatures/<fingerprint>.json``.
SIGNATURES_DIR = "signatures/"
#: Most signatures an archive may carry.
MAX_SIGNATURES = 16
#: Largest signature member (one is about 400 bytes).
MAX_SIGNATURE_SIZE = 4096
ALGORITHM = "ed25519"
SIGNATURE_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MEMBER = re.compile(rf"{re.escape(SIGNATURES_DIR)}([0-9a-f]{{64}})\.json")
_FIELDS = frozenset(
    {"algorithm", "fingerprint", "key_name", "manifest_sha256", "public_key", "signature", "signed_member", "version"}
)

Fail = Callable[[str, "str | None"], ArchiveError]


def is_signature_member(name: str) -> bool:
    return name.startswith(SIGNATURES_DIR)


def member_name(fingerprint: str) -> str:
    return f"{SIGNATURES_DIR}{fingerprint}.json"


@dataclass(frozen=True)
class SignatureEntry:
    """One signature member, well formed (not yet verified)."""

    member: str
    fingerprint: str
    key_name: str
    public_key: bytes
    signature: bytes
    manifest_sha256: str

    def to_json(self) -> dict[str, str]:
        return {"fingerprint": self.fingerprint, "key_name": self.key_name, "member": self.member}


@dataclass(frozen=True)
class SignatureCheck:
    """A signature and whether it verifies over the manifest (``problem`` says why not)."""

    entry: SignatureEntry
    problem: str | None

    @property
    def verified(self) -> bool:
        return self.problem is None


def _b64(value: object, length: int, what: str, bad: Callable[[str], ArchiveError]) -> bytes:
    if not isinstance(value, str):
        raise bad(f"{what} is not a base64 string")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{what} is not valid base64") from None
    if len(data) != length:
        raise bad(f"{what} is {len(data)} bytes, not {length} (truncated or garbled)")
    return data


def parse_signature(member: str, raw: bytes, fail: Fail) -> SignatureEntry:
    """The signature member ``member`` (its bytes ``raw``), its form checked; ``fail`` makes the error."""

    def bad(problem: str) -> ArchiveError:
        return fail(
            f"signature member {member!r} is damaged: {problem}. Remove it and sign again "
            "(cloacina-ctl sign FILE --key KEY), or ask the archive's publisher for an intact copy",
            member,
        )

    found = _MEMBER.fullmatch(member)
    if found is None:
        raise fail(
            f"has an unexpected member {member!r}; signatures are named signatures/<sha256 of the key>.json", member
        )
    try:
        data = loads_limited(raw.decode("utf-8"), member, max_bytes=MAX_SIGNATURE_SIZE)
    except (UnicodeDecodeError, ValueError, LimitExceeded) as exc:
        raise bad(f"it is not a JSON object ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise bad("it is not a JSON object")
    if set(data) != _FIELDS:
        missing, extra = sorted(_FIELDS - set(data)), sorted(set(data) - _FIELDS)
        problems = ([f"missing {missing}"] if missing else []) + ([f"unknown {extra}"] if extra else [])
        raise bad("; ".join(problems))
    if data["version"] != SIGNATURE_VERSION or isinstance(data["version"], bool):
        raise bad(f"version {data['version']!r} is not one this host reads ({SIGNATURE_VERSION})")
    if data["algorithm"] != ALGORITHM:
        raise bad(f"algorithm {data['algorithm']!r} is not {ALGORITHM!r}, the only one Cloacina verifies")
    if data["signed_member"] != "manifest.json":
        raise bad(f"it signs {data['signed_member']!r}; a signature covers manifest.json")
    for name in ("fingerprint", "manifest_sha256"):
        if not isinstance(data[name], str) or not _HEX64.fullmatch(data[name]):
            raise bad(f"{name} is not 64 lower-case hex digits")
    if not isinstance(data["key_name"], str) or not KEY_NAME.fullmatch(data["key_name"]):
        raise bad("key_name is not a key name")
    public_key = _b64(data["public_key"], 32, "public_key", bad)
    signature = _b64(data["signature"], 64, "signature", bad)
    if fingerprint_of(public_key) != data["fingerprint"] or data["fingerprint"] != found.group(1):
        raise bad("its fingerprint is not the sha256 of its public key, or not the one in its name")
    return SignatureEntry(member, data["fingerprint"], data["key_name"], public_key, signature, data["manifest_sha256"])


def verify(entry: SignatureEntry, manifest_bytes: bytes) -> str | None:
    """Why ``entry`` does not verify over ``manifest_bytes``, or None when it does."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    who = f"key {entry.key_name!r} ({entry.fingerprint[:16]})"
    if hashlib.sha256(manifest_bytes).hexdigest() != entry.manifest_sha256:
        return f"manifest.json was changed after {who} signed it"
    try:
        Ed25519PublicKey.from_public_bytes(entry.public_key).verify(entry.signature, manifest_bytes)
    except (InvalidSignature, ValueError):
        return f"the signature by {who} does not match manifest.json (the signature was altered or forged)"
    return None


def check_signatures(entries: Sequence[SignatureEntry], manifest_bytes: bytes) -> tuple[SignatureCheck, ...]:
    """Each signature with whether it verifies (no cryptography is imported when there are none)."""
    return tuple(SignatureCheck(e, verify(e, manifest_bytes)) for e in entries)


def signature_member(key: SigningKey, manifest_bytes: bytes) -> tuple[str, bytes]:
    """``(member name, member bytes)`` of ``key``'s signature over ``manifest_bytes`` (the same every time)."""
    body = {
        "algorithm": ALGORITHM,
        "fingerprint": key.fingerprint,
        "key_name": key.name,
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "public_key": base64.b64encode(key.public.raw).decode("ascii"),
        "signature": base64.b64encode(key.sign(manifest_bytes)).decode("ascii"),
        "signed_member": "manifest.json",
        "version": SIGNATURE_VERSION,
    }
    return member_name(key.fingerprint), (json.dumps(body, sort_keys=True, indent=2) + "\n").encode("ascii")


@dataclass(frozen=True)
class SignResult:
    """What ``sign_archive`` wrote: the archive, its new sha256 and size, and every signature it now carries."""

    path: Path
    sha256: str
    size: int
    added: tuple[str, ...]  # fingerprints of the keys that signed it now
    signatures: tuple[SignatureEntry, ...]
    archive: Archive


def sign_archive(
    source: str | os.PathLike[str], keys: Sequence[SigningKey], *, output: str | os.PathLike[str] | None = None
) -> SignResult:
    """Add each key's signature to the archive ``source`` (written to ``output``, default in place).

    The archive is read with every check (its signatures must verify), then written again by the
    archive writer: the same manifest bytes and wheels, with the same timestamps (its manifest's
    ``created_at``), the signatures last. Signing the same archive with the same keys, in any order
    and any number of times, gives the same bytes as ``package --sign`` with those keys.
    Raises ``ArchiveError`` (the archive is refused) or ``SigningError``; the file is unchanged then.
    """
    from ._reader import read_archive
    from ._writer import epoch_of, write_archive

    archive = read_archive(source, require_compatible=False)
    members = {e.member: e for e in archive.signatures}
    current = {m: _entry_bytes(archive, m) for m in members}
    added = []
    for key in keys:
        name, data = signature_member(key, archive.manifest_bytes)
        if name not in current:
            added.append(key.fingerprint)
        current[name] = data
    target = Path(output if output is not None else source)
    write_archive(
        target,
        archive.manifest,
        dict(archive.wheels),
        epoch_of(archive.manifest.created_at),
        manifest_bytes=archive.manifest_bytes,
        signatures=current,
    )
    written = read_archive(target, require_compatible=False)
    return SignResult(target, written.sha256, written.size, tuple(added), written.signatures, written)


def _entry_bytes(archive: Archive, member: str) -> bytes:
    """The bytes of a signature member the archive carries (read again: the reader keeps only their meaning)."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive.data)) as zf:
        return zf.read(member)
