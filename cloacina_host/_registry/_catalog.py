"""Registered workflows as catalog entries: each task runs in the worker of its package version.

Entries are built from the stored manifest (no package code runs in the host) and cached per
archive, so a lookup costs one small query (the active versions) once an archive has been seen.
Workers are per event loop (a worker's pipes belong to the loop that started it); a missing
install directory is re-created from the database right before a worker starts there, and the
first time a process runs a version's code the registry's load check (``check_dir``: signatures
and the tenant's policy) runs first, off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from .._discovery import CatalogEntry, WorkflowSource
from .._packaging import Manifest
from .._workers import Worker, WorkerPool, remote_workflow
from ._installer import is_installed


class LoopPools:
    """A ``WorkerPool`` per event loop, installing a package directory on first use; reaps idle workers."""

    def __init__(
        self,
        ensure_dir: Callable[[Path], Path],
        *,
        idle_timeout_s: float,
        load_timeout_s: float,
        check_dir: Callable[[Path], None] | None = None,
    ) -> None:
        self._ensure_dir = ensure_dir
        self._check_dir = check_dir
        self._checked: set[Path] = set()
        self.idle_timeout_s = idle_timeout_s
        self.load_timeout_s = load_timeout_s
        self._pools: dict[asyncio.AbstractEventLoop, WorkerPool] = {}
        self._last_reap = time.monotonic()
        self._reaping: asyncio.Task[int] | None = None

    def pool(self) -> WorkerPool:
        """The pool of the running event loop."""
        loop = asyncio.get_running_loop()
        for other in [lp for lp in self._pools if lp.is_closed()]:
            del self._pools[other]
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = WorkerPool(
                idle_timeout_s=self.idle_timeout_s, load_timeout_s=self.load_timeout_s
            )
        return pool

    async def get(self, package_dir: Path) -> Worker:
        pool = self.pool()
        running = pool.running(package_dir)
        if running is not None and (self._check_dir is None or package_dir in self._checked):
            self._maybe_reap(pool)
            return running  # its code is loaded: the directory was installed and checked before it started
        if not is_installed(package_dir):
            await asyncio.to_thread(self._ensure_dir, package_dir)
        if self._check_dir is not None and package_dir not in self._checked:  # before its code first runs here
            await asyncio.to_thread(self._check_dir, package_dir)
            self._checked.add(package_dir)
        self._maybe_reap(pool)
        return await pool.get(package_dir)

    def _maybe_reap(self, pool: WorkerPool) -> None:
        now = time.monotonic()
        if now - self._last_reap < max(self.idle_timeout_s / 4, 1.0):
            return
        self._last_reap = now
        if self._reaping is None or self._reaping.done():
            self._reaping = asyncio.ensure_future(pool.reap_idle())

    async def reap_idle(self) -> int:
        """Stop the running loop's workers that have been idle longer than ``idle_timeout_s``."""
        pool = self._pools.get(asyncio.get_running_loop())
        return 0 if pool is None else await pool.reap_idle()

    def workers(self) -> list[Worker]:
        """The worker processes of every loop's pool (for a service's gauges)."""
        return [w for pool in list(self._pools.values()) for w in pool.workers()]

    async def aclose(self) -> None:
        """Stop the workers of the running loop."""
        loop = asyncio.get_running_loop()
        pool = self._pools.pop(loop, None)
        if self._reaping is not None and not self._reaping.done():
            await asyncio.gather(self._reaping, return_exceptions=True)
        if pool is not None:
            await pool.close()


def build_entries(
    pools: LoopPools, package_dir: Path, manifest: Manifest, *, display_name: str, version: str
) -> list[CatalogEntry]:
    """One entry per workflow of the manifest, each running its tasks in ``package_dir``'s worker."""
    entries = []
    for wf in manifest.workflows:
        described = wf.model_dump(mode="json")
        workflow = remote_workflow(pools, package_dir, wf.key, described)
        entries.append(
            CatalogEntry(
                workflow,
                wf.package,
                WorkflowSource("registered", display_name, version, wf.entry_point.name),
                fingerprint=wf.fingerprint,
            )
        )
    return entries
