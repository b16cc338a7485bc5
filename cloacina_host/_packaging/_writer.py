"""Writing a ``.cloacina`` archive, byte-for-byte reproducibly.

``manifest.json`` first, then ``wheels/`` members sorted by name, then ``signatures/`` members
sorted by name (``_signing``); every member with the same
timestamp (``SOURCE_DATE_EPOCH``, or 1980-01-01 when unset), mode 0644, Unix as creator and deflate
at level 9. The file is written beside its destination and renamed into place only when complete,
so a failure never leaves a partial archive behind.
"""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import PackagingError

if TYPE_CHECKING:
    from ._manifest import Manifest

SOURCE_DATE_EPOCH_ENV = "SOURCE_DATE_EPOCH"
#: The earliest time a zip can record: used when SOURCE_DATE_EPOCH is not set.
ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z
_MEMBER_MODE = 0o100644
_COMPRESS_LEVEL = 9


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int:
    """``SOURCE_DATE_EPOCH`` as an int (clamped to what zip can store), else 1980-01-01."""
    value = (os.environ if environ is None else environ).get(SOURCE_DATE_EPOCH_ENV, "").strip()
    if not value:
        return ZIP_EPOCH
    try:
        epoch = int(value)
    except ValueError:
        raise PackagingError(
            f"{SOURCE_DATE_EPOCH_ENV}={value!r} is not an integer number of seconds since 1970; "
            f"set it to e.g. $(git log -1 --format=%ct) or unset it."
        ) from None
    return min(max(epoch, ZIP_EPOCH), 4354819199)  # zip's last representable second: 2107-12-31


def created_at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _info(name: str, epoch: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.gmtime(epoch)[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = _MEMBER_MODE << 16
    return info


def write_archive(
    output: Path,
    manifest: Manifest,
    wheels: Mapping[str, Path | bytes],
    epoch: int,
    *,
    manifest_bytes: bytes | None = None,
    signatures: Mapping[str, bytes] | None = None,
) -> int:
    """Write ``manifest`` and ``wheels`` (file name -> path or bytes) to ``output``; return its size in bytes.

    ``manifest_bytes``: the manifest exactly as to be stored (default ``manifest.to_json()``): a signed
    manifest is copied byte for byte. ``signatures``: member name -> bytes, written last, sorted.
    """
    from ._manifest import MANIFEST_NAME, WHEELS_DIR  # here: ``package`` reads the epoch before pydantic is loaded

    expected = manifest.wheel_members()
    given = sorted(WHEELS_DIR + name for name in wheels)
    if given != expected:
        raise PackagingError(f"internal error: wheels {given} do not match the manifest's {expected}")
    raw_manifest = manifest.to_json().encode("utf-8") if manifest_bytes is None else manifest_bytes
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as zf:
            zf.writestr(_info(MANIFEST_NAME, epoch), raw_manifest, compresslevel=_COMPRESS_LEVEL)
            for member in expected:
                wheel = wheels[member[len(WHEELS_DIR) :]]
                data = wheel if isinstance(wheel, bytes) else wheel.read_bytes()
                zf.writestr(_info(member, epoch), data, compresslevel=_COMPRESS_LEVEL)
            for member, data in sorted((signatures or {}).items()):
                zf.writestr(_info(member, epoch), data, compresslevel=_COMPRESS_LEVEL)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return output.stat().st_size


def epoch_of(when: datetime) -> int:
    """The epoch an archive was written with, from its manifest's ``created_at`` (what ``created_at`` made)."""
    return min(max(int(when.timestamp()), ZIP_EPOCH), 4354819199)
