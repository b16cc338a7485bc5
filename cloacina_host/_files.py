"""Reading files named by users or dropped into watched directories: regular files only, size capped.

A device (``/dev/zero``), a FIFO, a socket or a directory, or a symbolic link to one, is refused
with ``NotRegularFile`` naming what it is; a FIFO is opened with ``O_NONBLOCK`` so that it cannot
block; a file over the limit (a 6 GiB sparse file...) is refused with ``FileTooLarge`` from its
``fstat`` alone, and one that grows while it is read is cut at the limit. Callers translate these
into their own errors (an archive's ``ArchiveError``, a context file's usage error).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator

_CHUNK = 1024 * 1024
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words: "a directory", "a FIFO (named pipe)"..."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return name
    return "not a regular file"


class NotRegularFile(OSError):
    """The path is not a regular file; ``kind`` says what it is (``"a FIFO (named pipe)"``...)."""

    def __init__(self, path: str, mode: int, *, linked: bool) -> None:
        self.kind = file_kind(mode) + (" (through a symbolic link)" if linked else "")
        super().__init__(f"{path} is {self.kind}, not a regular file")


class FileTooLarge(OSError):
    """The file is over the size limit; ``size`` is what was found (so far), ``limit`` the limit."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"{path} is {size:,} bytes, more than the limit of {limit:,}")


def _chunks(path: str | os.PathLike[str], max_size: int) -> Iterator[bytes]:
    name = os.fspath(path)
    linked = os.path.islink(name)
    before = os.stat(name)  # refused before opening: opening some devices has effects
    if not stat.S_ISREG(before.st_mode):
        raise NotRegularFile(name, before.st_mode, linked=linked)
    if before.st_size > max_size:
        raise FileTooLarge(name, before.st_size, max_size)
    fd = os.open(name, _FLAGS)
    try:
        st = os.fstat(fd)  # what was opened, not what the name pointed to a moment ago
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(name, st.st_mode, linked=linked)
        if st.st_size > max_size:
            raise FileTooLarge(name, st.st_size, max_size)
        got = 0
        while chunk := os.read(fd, min(_CHUNK, max_size + 1 - got)):
            got += len(chunk)
            if got > max_size:  # it grew while we read it
                raise FileTooLarge(name, got, max_size)
            yield chunk
    finally:
        os.close(fd)


def read_regular_file(path: str | os.PathLike[str], max_size: int) -> bytes:
    """The bytes of the regular file ``path``: ``NotRegularFile``, ``FileTooLarge`` or ``OSError`` else."""
    return b"".join(_chunks(path, max_size))


def sha256_of_regular_file(path: str | os.PathLike[str], max_size: int) -> str:
    """The sha256 of the regular file ``path``, read in chunks; the same refusals as ``read_regular_file``."""
    digest = hashlib.sha256()
    for chunk in _chunks(path, max_size):
        digest.update(chunk)
    return digest.hexdigest()
