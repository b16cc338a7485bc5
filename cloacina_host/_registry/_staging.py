"""Staging directories of installs in progress (``<home>/packages/.installing-*``), and removing stale ones.

An install is made in a staging directory beside its final one and renamed into place when done.
A process killed meanwhile (``kill -9`` of ``register``) leaves its staging directory behind; the
next registry open and the next install remove such leftovers, and only those:

- each staging directory is named after its host and pid (``.installing-<sha>-<host>-<pid>-*``) and
  holds an owner file (``.cloacina-staging``: host name, pid, start time) that its installing
  process keeps locked (``flock``) until the directory is renamed or removed;
- a staging directory whose owner file is locked is in use, never stale;
- otherwise it is stale when its owner is gone: on this host, when its pid no longer runs; on
  another host sharing the home (a lock on a network file system may not be seen across
  machines), with a name that does not say its owner, or with a pid now reused, once it has not changed for
  ``STALE_AFTER_S`` (an hour);
- a stale directory is first renamed to ``.removing-*`` (atomic: two cleaners never both take
  it), then deleted; ``.removing-*`` directories of a cleaner killed half way are deleted too.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

if sys.platform != "win32":
    import fcntl

log = logging.getLogger("cloacina_host.registry")
log.addHandler(logging.NullHandler())

STAGING_PREFIX = ".installing-"
REMOVING_PREFIX = ".removing-"
OWNER_FILE = ".cloacina-staging"
#: A staging directory of another machine (or without an owner file) untouched this long is stale.
STALE_AFTER_S = 3600.0
_MAX_OWNER_BYTES = 4096


@dataclass
class Staging:
    """A staging directory this process owns, its owner file held locked until ``release``."""

    path: Path
    _owner: IO[bytes] | None

    def release(self) -> None:
        """Drop the owner file (before the rename into place) and its lock."""
        with contextlib.suppress(FileNotFoundError):
            (self.path / OWNER_FILE).unlink()
        self.close()

    def close(self) -> None:
        if self._owner is not None:
            self._owner.close()  # releases the lock
            self._owner = None


def _host_tag(host: str | None = None) -> str:
    return hashlib.sha256((host or socket.gethostname()).encode()).hexdigest()[:8]


def _owner_from_name(name: str) -> tuple[str, int] | None:
    """``(host tag, pid)`` from ``.installing-<prefix>-<host tag>-<pid>-<random>``: known from the moment it exists."""
    parts = name[len(STAGING_PREFIX) :].split("-")
    if len(parts) < 4 or not parts[-2].isdigit():
        return None
    return parts[-3], int(parts[-2])


def make_staging(root: Path, prefix: str) -> Staging:
    """A new staging directory ``root/.installing-<prefix>-<host>-<pid>-*`` owned (and locked) by this process.

    Its name says which host and process made it, so a process killed before it wrote its owner
    file still leaves a directory that can be told stale.
    """
    path = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{prefix}-{_host_tag()}-{os.getpid()}-", dir=root))
    owner = open(path / OWNER_FILE, "w+b")  # noqa: SIM115  # held open for the lock's lifetime
    try:
        if sys.platform != "win32":  # Windows: no flock; pid and age decide
            with contextlib.suppress(OSError):  # a file system without locks: pid and age decide
                fcntl.flock(owner.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        data = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        owner.write(json.dumps(data).encode())
        owner.flush()
    except BaseException:
        owner.close()
        shutil.rmtree(path, ignore_errors=True)
        raise
    return Staging(path, owner)


def _read_owner(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_OWNER_BYTES)
        data = json.loads(raw)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def _lock_free(owner_file: Path) -> bool | None:
    """Whether nobody holds ``owner_file``'s lock (True), somebody does (False), or it cannot be told (None)."""
    if sys.platform == "win32":
        return None
    try:
        fd = os.open(owner_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return False if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def _newest_change(path: Path) -> float:
    times = [path.stat().st_mtime]
    with contextlib.suppress(OSError):
        times.append((path / OWNER_FILE).stat().st_mtime)
    return max(times)


def is_stale(path: Path, *, now: float | None = None, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether staging directory ``path`` belongs to nobody any more (see the module's rules)."""
    now = time.time() if now is None else now
    owner_file = path / OWNER_FILE
    owner = _read_owner(owner_file)
    free = _lock_free(owner_file) if owner is not None else None
    if free is False:
        return False  # its owner holds the lock: an install in progress
    try:
        old = now - _newest_change(path) > stale_after_s
    except OSError:
        return False  # gone meanwhile
    named = _owner_from_name(path.name)
    if owner is not None:
        same_host, pid = owner.get("host") == socket.gethostname(), owner.get("pid")
    elif named is not None:
        same_host, pid = named[0] == _host_tag(), named[1]
    else:
        return old
    if not same_host:
        return old
    if not isinstance(pid, int) or pid == os.getpid():
        return old if not isinstance(pid, int) else False
    return not _pid_alive(pid) or old  # a pid reused by another process: the age decides


def clean_stale(root: Path) -> list[Path]:
    """Remove the stale staging directories under ``root`` (an install root); the ones removed.

    Never raises for a file-system problem: leftovers are retried at the next call.
    """
    removed: list[Path] = []
    try:
        names = [e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    for name in names:
        path = root / name
        if name.startswith(REMOVING_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
            continue
        if not name.startswith(STAGING_PREFIX):
            continue
        try:
            if not is_stale(path):
                continue
            doomed = root / f"{REMOVING_PREFIX}{uuid.uuid4().hex[:12]}"
            os.rename(path, doomed)  # one cleaner wins; the others find it gone
        except OSError:
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        log.info("removed the leftover install staging directory %s", path)
        removed.append(path)
    return removed
