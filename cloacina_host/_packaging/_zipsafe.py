"""Reading zip files that may be hostile: member names, links, sizes and compression ratios.

Every limit is a named constant. ``check_members`` looks at the central directory only (cheap);
``read_member`` reads one member with its size capped, so a forged size cannot make it read more.
"""

from __future__ import annotations

import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath

from ._errors import ArchiveError

MiB = 1024 * 1024

#: Most members a ``.cloacina`` archive may hold (manifest + wheels).
MAX_ARCHIVE_MEMBERS = 256
#: Most members a wheel inside an archive may hold.
MAX_WHEEL_MEMBERS = 20_000
#: Largest uncompressed size of one member.
MAX_MEMBER_SIZE = 256 * MiB
#: Largest uncompressed size of all members of one zip together.
MAX_TOTAL_SIZE = 1024 * MiB
#: Largest uncompressed size of an archive and all its wheels together: the archive's members plus
#: every member of every wheel, as their central directories declare them (what registering writes).
MAX_UNPACKED_SIZE = 1024 * MiB
#: Largest ``manifest.json``.
MAX_MANIFEST_SIZE = 4 * MiB
#: Highest uncompressed/compressed ratio a member may have, once it is larger than RATIO_FLOOR.
MAX_COMPRESSION_RATIO = 200
#: Members smaller than this are not ratio-checked (tiny files of repeated bytes compress very well).
RATIO_FLOOR = 64 * 1024

#: Compression methods we accept: what wheels and our writer use.
ALLOWED_COMPRESSION = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})

#: Everything a damaged zip can make ``zipfile`` raise; translated to ``ArchiveError`` at the boundary.
ZIP_FAILURES: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    ValueError,
    OverflowError,
    struct.error,
    UnicodeDecodeError,
    RuntimeError,
    KeyError,
    IndexError,
    OSError,
)


@dataclass(frozen=True)
class Limits:
    max_members: int
    max_member_size: int = MAX_MEMBER_SIZE
    max_total_size: int = MAX_TOTAL_SIZE
    max_ratio: int = MAX_COMPRESSION_RATIO


ARCHIVE_LIMITS = Limits(max_members=MAX_ARCHIVE_MEMBERS)
WHEEL_LIMITS = Limits(max_members=MAX_WHEEL_MEMBERS)


def unsafe_name_reason(name: str) -> str | None:
    """Why a member name is unsafe to extract, or None when it is fine."""
    if not name:
        return "has an empty name"
    if "\x00" in name:
        return "has a NUL byte in its name"
    if "\\" in name:
        return "uses a backslash in its path (zip paths use '/')"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "has a '..' component in its path, which would escape the extraction directory"
    return None


def check_members(
    infos: Sequence[zipfile.ZipInfo], limits: Limits, fail: Callable[[str, str | None], ArchiveError]
) -> None:
    """Refuse unsafe names, links, duplicates, encryption, odd compression and sizes over the limits."""
    if len(infos) > limits.max_members:
        raise fail(f"holds {len(infos)} members, more than the limit of {limits.max_members}", None)
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        reason = unsafe_name_reason(name)
        if reason:
            raise fail(f"member {name!r} {reason}", name)
        if name in seen:
            raise fail(f"member {name!r} appears twice", name)
        seen.add(name)
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise fail(f"member {name!r} is a symbolic link; links are not allowed", name)
        if info.flag_bits & 0x1:
            raise fail(f"member {name!r} is encrypted; encrypted members are not allowed", name)
        if info.compress_type not in ALLOWED_COMPRESSION:
            raise fail(
                f"member {name!r} uses compression method {info.compress_type}; only stored (0) and deflate (8) "
                "are allowed",
                name,
            )
        if info.file_size > limits.max_member_size:
            raise fail(
                f"member {name!r} declares {info.file_size} bytes uncompressed, more than the limit of "
                f"{limits.max_member_size}",
                name,
            )
        if info.file_size > RATIO_FLOOR and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise fail(
                f"member {name!r} is compressed {ratio:.0f} to 1 ({info.compress_size} -> {info.file_size} bytes), "
                f"beyond the limit of {limits.max_ratio} to 1 (a zip bomb?)",
                name,
            )
        total += info.file_size
        if total > limits.max_total_size:
            raise fail(f"members total more than {limits.max_total_size} bytes uncompressed (the limit)", name)


def read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, fail: Callable[[str, str | None], ArchiveError], cap: int
) -> bytes:
    """Read one member, never more than its declared size nor ``cap``; a forged size shows as a CRC error."""
    if info.file_size > cap:
        raise fail(f"member {info.filename!r} is {info.file_size} bytes, more than the limit of {cap}", info.filename)
    chunks: list[bytes] = []
    got = 0
    try:
        with zf.open(info) as stream:
            while chunk := stream.read(min(1 * MiB, cap + 1 - got)):
                got += len(chunk)
                if got > cap:
                    raise fail(f"member {info.filename!r} decompresses to more than {cap} bytes", info.filename)
                chunks.append(chunk)
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            raise fail(
                f"member {info.filename!r} does not decompress to its declared {info.file_size} bytes "
                "(CRC mismatch): it is larger than declared, or corrupt",
                info.filename,
            ) from exc
        raise fail(f"member {info.filename!r} cannot be read: {exc}", info.filename) from exc
    if got != info.file_size:
        raise fail(
            f"member {info.filename!r} decompresses to {got} bytes, not the {info.file_size} declared",
            info.filename,
        )
    return b"".join(chunks)


@contextmanager
def translated(fail: Callable[[str, str | None], ArchiveError], what: str) -> Iterator[None]:
    """Turn whatever ``zipfile`` raises on damaged input into one ``ArchiveError``."""
    try:
        yield
    except ArchiveError:
        raise
    except ZIP_FAILURES as exc:
        raise fail(f"{what} is damaged and cannot be read ({type(exc).__name__}: {exc})", None) from exc
