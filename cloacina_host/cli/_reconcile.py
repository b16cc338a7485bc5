"""``serve --watch``'s reconciler: keeps the registry in step with a directory of ``.cloacina`` files.

It never blocks the host: every file-system and registry call runs on a thread of its own
(daemon threads, so an abandoned one cannot hold the process open), each file within a time
limit. A file that exceeds it is reported and skipped until it changes (its registration, if it
ends later, is reported then). Only regular files are considered (a link to one is followed; a
FIFO, a device or a link to one is reported and skipped), a file over the archive size limit is
refused from its size alone, and any error in one file is one line, never the end of ``serve``.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cloacina_workflow import CloacinaError

from .._engine._guard import DaemonThreadExecutor
from .._files import file_kind, sha256_of_regular_file
from .._packaging._source import MAX_ARCHIVE_SIZE

if TYPE_CHECKING:
    from .._registry import Registry
    from .._registry._results import RegisterResult

T = TypeVar("T")

#: the default time limit per file (reading, checking, installing and loading it)
DEFAULT_FILE_TIMEOUT_S = 120.0


@dataclass
class _Seen:
    stamp: tuple[int, int]  # (mtime_ns, size)
    sha256: str | None  # None: not known (it timed out)
    name: str | None  # None: the file failed to register
    version: str | None


@dataclass
class _Entry:
    path: Path
    mode: int
    stamp: tuple[int, int]


def sha256_of_archive(path: Path) -> str:
    """The sha256 of a regular file within the archive size limit, read in chunks; ``OSError`` else."""
    return sha256_of_regular_file(path, MAX_ARCHIVE_SIZE)


class _Lines(list[str]):
    """The lines of a pass, each reported as it is added."""

    def __init__(self, report: Callable[[str], None]) -> None:
        super().__init__()
        self._report = report

    def append(self, line: str) -> None:
        super().append(line)
        self._report(line)


class DirectoryReconciler:
    """Keeps the registry in step with a directory of ``.cloacina`` files; ``await reconcile()`` per pass.

    ``report`` hears each change as it happens (``reconcile`` returns them too), and what happens
    after a pass gave up waiting on a file (a late registration).
    """

    def __init__(
        self,
        registry: Registry,
        directory: Path,
        *,
        file_timeout_s: float = DEFAULT_FILE_TIMEOUT_S,
        report: Callable[[str], None] | None = None,
        allow_downgrade: bool = False,
    ) -> None:
        self.registry = registry
        self.allow_downgrade = allow_downgrade
        self.directory = directory
        self.file_timeout_s = file_timeout_s
        self.report = report or (lambda _line: None)
        self.seen: dict[Path, _Seen] = {}
        self._refused: dict[Path, tuple[int, int]] = {}  # reported once per (mtime, size)
        self._busy: dict[Path, asyncio.Future[Any]] = {}  # still being registered after its time limit
        self._executor = DaemonThreadExecutor("cloacina-reconcile")

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a reconciler thread, within the time limit (``asyncio.TimeoutError`` past it)."""
        fut = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        return await asyncio.wait_for(asyncio.shield(fut), self.file_timeout_s)

    def _scan(self) -> list[_Entry]:
        found = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.name.endswith(".cloacina"):
                    continue
                try:
                    st = os.stat(entry.path)  # a link is followed: to a regular file it is fine, to a device not
                except OSError:  # removed while we looked, or a dangling link
                    continue
                found.append(_Entry(Path(entry.path), st.st_mode, (st.st_mtime_ns, st.st_size)))
        return sorted(found, key=lambda e: (e.stamp[0], e.path.name))  # oldest first: the newest file wins

    def _register(self, path: Path, known_sha: str | None) -> tuple[str, RegisterResult | CloacinaError | None]:
        sha = sha256_of_archive(path)
        if sha == known_sha:
            return sha, None
        try:
            return sha, self.registry.register(path, activate=self._activates(path))
        except CloacinaError as exc:
            return sha, exc

    def _activates(self, path: Path) -> bool:
        """A file's version becomes active unless it is older than the active one (``allow_downgrade``: always)."""
        if self.allow_downgrade:
            return True
        from .._packaging import read_archive
        from .._registry import PackageNotFoundError
        from .._registry._registry import _newer

        package = read_archive(path, require_compatible=False).manifest.package
        try:
            active = self.registry.show(package.name).active_version
        except PackageNotFoundError:
            return True
        return active is None or not _newer(active, package.version)

    async def reconcile(self) -> list[str]:
        """One pass; returns what it did, one line per change. Raises only if the directory cannot be listed."""
        done = _Lines(self.report)
        present = await self._in_thread(self._scan)
        for entry in present:
            try:
                line = await self._reconcile_file(entry)
            except Exception as exc:  # noqa: BLE001  # one file's trouble is one line, never the end of serve
                self.seen[entry.path] = _Seen(entry.stamp, None, None, None)
                line = (
                    f"{entry.path.name}: reconciling it failed ({type(exc).__name__}: {exc}); skipped until it changes"
                )
            if line:
                done.append(line)
        names = {e.path for e in present}
        for path in [p for p in self._refused if p not in names]:
            del self._refused[path]
        for path in [p for p in self.seen if p not in names and p not in self._busy]:
            gone = self.seen.pop(path)
            if gone.name is None or any(s.name == gone.name for s in self.seen.values()):
                continue
            try:
                line = await self._in_thread(self._deactivate, path, gone)
            except asyncio.TimeoutError:
                line = f"{path.name} removed, but deactivating {gone.name} took longer than {self.file_timeout_s:g} s"
            except Exception as exc:  # noqa: BLE001  # reported, and serve goes on
                line = f"{path.name} removed, but deactivating {gone.name} failed: {exc}"
            if line:
                done.append(line)
        return list(done)

    async def _reconcile_file(self, entry: _Entry) -> str | None:
        path, stamp = entry.path, entry.stamp
        if path in self._busy:
            return None  # an earlier pass's registration of it is still running
        refusal = None
        if not stat.S_ISREG(entry.mode):
            refusal = f"{path.name} is {file_kind(entry.mode)}, not a regular file; skipped"
        elif stamp[1] > MAX_ARCHIVE_SIZE:
            refusal = (
                f"{path.name} is {stamp[1]:,} bytes, more than the archive limit of {MAX_ARCHIVE_SIZE:,}; "
                "skipped until it changes"
            )
        if refusal is not None:
            self.seen.pop(path, None)
            if self._refused.get(path) == stamp:
                return None
            self._refused[path] = stamp
            return refusal
        self._refused.pop(path, None)
        seen = self.seen.get(path)
        if seen is not None and seen.stamp == stamp:
            return None
        fut = asyncio.get_running_loop().run_in_executor(
            self._executor, self._register, path, seen.sha256 if seen is not None else None
        )
        try:
            sha, outcome = await asyncio.wait_for(asyncio.shield(fut), self.file_timeout_s)
        except asyncio.TimeoutError:
            self.seen[path] = _Seen(stamp, None, None, None)
            self._busy[path] = fut
            fut.add_done_callback(lambda f: self._late(path, stamp, f))
            return (
                f"{path.name}: not registered within {self.file_timeout_s:g} s (the time limit per file); "
                "skipped until it changes"
            )
        except OSError as exc:
            self.seen[path] = _Seen(stamp, None, None, None)
            return f"cannot read {path}: {exc.strerror or exc}"
        return self._record(path, stamp, seen, sha, outcome)

    def _record(
        self,
        path: Path,
        stamp: tuple[int, int],
        seen: _Seen | None,
        sha: str,
        outcome: RegisterResult | CloacinaError | None,
    ) -> str | None:
        if outcome is None:  # the same bytes as before, touched
            assert seen is not None
            seen.stamp = stamp
            return None
        if isinstance(outcome, CloacinaError):
            self.seen[path] = _Seen(stamp, sha, None, None)
            return f"{path.name} was not registered: {outcome}"
        self.seen[path] = _Seen(stamp, sha, outcome.name, outcome.version)
        if not outcome.active:
            than = f"the active {outcome.previous_active}" if outcome.previous_active else "the active version"
            return (
                f"{path.name}: registered {outcome.name} {outcome.version}, not activated: it is older than "
                f"{than} (activate it with cloacina-ctl packages activate "
                f"{outcome.name}=={outcome.version}, or start serve with --allow-downgrade)"
            )
        was = f" (was {outcome.previous_active})" if outcome.previous_active not in (None, outcome.version) else ""
        verb = {"registered": "registered", "replaced": "replaced", "unchanged": "already registered:"}
        return f"{path.name}: {verb[outcome.status]} {outcome.name} {outcome.version}, active{was}"

    def _late(self, path: Path, stamp: tuple[int, int], fut: asyncio.Future[Any]) -> None:
        """A registration that ended after its time limit: record it if the file is unchanged, and say so."""
        self._busy.pop(path, None)
        if fut.cancelled():
            return
        exc = fut.exception()
        current = self.seen.get(path)
        line: str | None
        if exc is not None:
            line = f"{path.name}: reconciling it failed after the time limit ({type(exc).__name__}: {exc})"
        else:
            sha, outcome = fut.result()
            if current is not None and current.stamp == stamp:
                line = self._record(path, stamp, current, sha, outcome)
            else:
                line = None
                if not isinstance(outcome, CloacinaError) and outcome is not None:
                    line = f"{path.name}: registered {outcome.name} {outcome.version}"
        if line:
            self.report(f"{line} (after the time limit per file)")

    def _deactivate(self, path: Path, gone: _Seen) -> str | None:
        assert gone.name is not None
        info = self.registry.show(gone.name)
        if info.active_version != gone.version:
            return None
        self.registry.deactivate(gone.name)
        return f"{path.name} removed: {gone.name} {gone.version} deactivated"

    def close(self) -> None:
        """Stop the reconciler's idle threads (a busy one ends with its file, unwaited)."""
        self._executor.shutdown(wait=False)
