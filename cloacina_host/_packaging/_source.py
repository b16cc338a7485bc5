"""Reading a ``.cloacina`` path: only a regular file under the size limit, its size checked before reading.

``read_archive_file`` is the one way the host reads an archive from a path (``inspect``,
``validate``, ``register``, ``serve --watch`` through the registry). A device (``/dev/zero``), a
FIFO, a socket, a directory, or a symbolic link to any of those is refused with one message naming
what the path is; a FIFO is opened with ``O_NONBLOCK`` so that it cannot block; a file larger than
``MAX_ARCHIVE_SIZE`` (a 6 GiB sparse file...) is refused from its ``fstat`` without reading it.
"""

from __future__ import annotations

import os
import stat

from ._errors import ArchiveError
from ._zipsafe import MAX_TOTAL_SIZE

#: Largest ``.cloacina`` file read at all (bytes).
MAX_ARCHIVE_SIZE = MAX_TOTAL_SIZE

_CHUNK = 1024 * 1024


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words: "a directory", "a FIFO (named pipe)"..."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"


def _refuse_kind(name: str, mode: int, linked: bool) -> ArchiveError:
    via = " (through a symbolic link)" if linked else ""
    return ArchiveError(f"{name}: is {file_kind(mode)}{via}, not a .cloacina file.", path=name)


def _too_large(name: str, size: int, limit: int) -> ArchiveError:
    return ArchiveError(
        f"{name}: is {size:,} bytes, more than the limit of {limit:,} (MAX_ARCHIVE_SIZE) for a .cloacina file.",
        path=name,
    )


def read_archive_file(path: str | os.PathLike[str], *, max_size: int = MAX_ARCHIVE_SIZE) -> bytes:
    """The bytes of the regular file ``path``, never more than ``max_size``; ``ArchiveError`` otherwise."""
    name = os.fspath(path)
    try:
        linked = os.path.islink(name)
        before = os.stat(name)
        if not stat.S_ISREG(before.st_mode):
            raise _refuse_kind(name, before.st_mode, linked)
        if before.st_size > max_size:
            raise _too_large(name, before.st_size, max_size)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(name, flags)
        try:
            st = os.fstat(fd)  # what was opened, not what the name pointed to a moment ago
            if not stat.S_ISREG(st.st_mode):
                raise _refuse_kind(name, st.st_mode, linked)
            if st.st_size > max_size:
                raise _too_large(name, st.st_size, max_size)
            chunks: list[bytes] = []
            got = 0
            while chunk := os.read(fd, min(_CHUNK, max_size + 1 - got)):
                got += len(chunk)
                if got > max_size:  # it grew while we read it
                    raise _too_large(name, got, max_size)
                chunks.append(chunk)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise ArchiveError(f"{name}: no such file. Check the path.", path=name) from None
    except NotADirectoryError:
        raise ArchiveError(f"{name}: no such file (a part of the path is not a directory).", path=name) from None
    except IsADirectoryError:
        raise ArchiveError(f"{name}: is a directory, not a .cloacina file.", path=name) from None
    except PermissionError:
        raise ArchiveError(f"{name}: cannot be read: permission denied.", path=name) from None
    except OSError as exc:
        raise ArchiveError(f"{name}: cannot be read: {exc.strerror or exc}.", path=name) from None
    return b"".join(chunks)
