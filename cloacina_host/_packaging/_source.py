"""Reading a ``.cloacina`` path: only a regular file under the size limit, its size checked before reading.

``read_archive_file`` is the one way the host reads an archive from a path (``inspect``,
``validate``, ``register``, ``serve --watch`` through the registry). A device (``/dev/zero``), a
FIFO, a socket, a directory, or a symbolic link to any of those is refused with one message naming
what the path is; a FIFO is opened with ``O_NONBLOCK`` so that it cannot block; a file larger than
``MAX_ARCHIVE_SIZE`` (a 6 GiB sparse file...) is refused from its ``fstat`` without reading it.
"""

from __future__ import annotations

import os

from .._files import FileTooLarge, NotRegularFile, read_regular_file
from ._errors import ArchiveError
from ._zipsafe import MAX_TOTAL_SIZE

#: Largest ``.cloacina`` file read at all (bytes).
MAX_ARCHIVE_SIZE = MAX_TOTAL_SIZE


def archive_too_large(name: str, size: int | None, limit: int = MAX_ARCHIVE_SIZE) -> ArchiveError:
    """The refusal of an archive over ``limit`` bytes (``size`` None: only known to be over it, e.g. streamed)."""
    what = f"is {size:,} bytes, more than" if size is not None else "is more than"
    return ArchiveError(f"{name}: {what} the limit of {limit:,} (MAX_ARCHIVE_SIZE) for a .cloacina file.", path=name)


def read_archive_file(path: str | os.PathLike[str], *, max_size: int = MAX_ARCHIVE_SIZE) -> bytes:
    """The bytes of the regular file ``path``, never more than ``max_size``; ``ArchiveError`` otherwise."""
    name = os.fspath(path)
    try:
        return read_regular_file(name, max_size)
    except NotRegularFile as exc:
        raise ArchiveError(f"{name}: is {exc.kind}, not a .cloacina file.", path=name) from None
    except FileTooLarge as exc:
        raise archive_too_large(name, exc.size, exc.limit) from None
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
