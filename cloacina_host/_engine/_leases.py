"""A distributed worker's hold on its claims: renewing its leases, hearing notifications, handing tasks back.

``LeaseKeeping`` is a part of ``DistributedWorker``: the lease renewal loop (which also stops the
tasks of cancelled executions, and those whose lease another worker took), the LISTEN loop that
wakes the worker, and the release of unfinished tasks at shutdown. Both loops are supervised
(``_supervise``): the worker stops when one dies.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .._errors import StorageError
from .._storage import Database
from .._storage import _channel as ch
from .._storage import _claims as c
from ._supervise import RenewalClock
from ._worker_state import MAX_BACKOFF_S, Running, WorkerStats

log = logging.getLogger("cloacina_host.worker")

T = TypeVar("T")


class LeaseKeeping:
    """The lease and notification side of ``DistributedWorker`` (which sets these attributes)."""

    owner: str
    tenant: str
    lease_s: float
    poll_s: float
    grace_s: float
    stats: WorkerStats
    db: Database | None
    _db_pool: ThreadPoolExecutor
    _running: dict[tuple[str, str], Running]
    _wake: asyncio.Event
    _hurry: asyncio.Event
    _listening: bool

    async def _db(self, action: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction on a database thread."""
        db = self.db
        assert db is not None

        def work() -> T:
            with db.write(action) as conn:
                return fn(conn, *args)

        return await asyncio.get_running_loop().run_in_executor(self._db_pool, contextvars.copy_context().run, work)

    async def _listen(self) -> None:
        """Set the wake event on every notification for this tenant; reconnect with backoff."""
        assert self.db is not None
        delay = 0.5

        def listening() -> None:
            nonlocal delay
            self._listening = True
            delay = 0.5
            self._wake.set()  # catch up on whatever was notified while not listening

        while True:
            try:
                async for tenant in ch.notifications(self.db, listening):
                    if tenant == self.tenant:
                        self._wake.set()
            except StorageError as exc:
                self._listening = False
                log.warning(
                    "LISTEN on %s failed: %s; polling every %gs meanwhile, retrying in %gs",
                    self.db.display_url,
                    exc,
                    self.poll_s,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    async def _renew(self) -> None:
        """Every ``lease_s / 3``: extend this worker's leases; cancel the tasks whose lease another worker took.

        A failed renewal is retried at the next tick; once none succeeded for a whole lease the loop
        dies (``RenewalClock``), and the worker stops rather than run tasks others may run too.
        """
        clock = RenewalClock(self.lease_s)
        while True:
            await asyncio.sleep(self.lease_s / 3)
            asked = time.monotonic()
            if not self._running:
                clock.renewed(asked)  # nothing held: nothing can lapse
                continue
            try:
                held = await self._db("renewing leases", self._renew_all)
            except StorageError as exc:
                log.warning("could not renew the leases of %s: %s", self.owner, str(exc).rstrip())
                clock.failed(exc)
                continue
            clock.renewed(asked)
            keys = {(e, t) for e, t, _ in held}
            lost = [
                (key, r)
                for key, r in list(self._running.items())
                if key not in keys and not r.ending and r.claimed_at < asked
            ]
            cancelled = await self._cancelled_among([r.claim.execution_id for _key, r in lost])
            for _key, r in lost:
                if r.claim.execution_id in cancelled:
                    log.info(
                        "execution %s was cancelled: stopping %s %s (attempt %d)",
                        r.claim.execution_id[:8],
                        r.claim.namespace,
                        r.claim.task_id,
                        r.claim.attempt,
                    )
                    r.stop.kill_reason = f"was stopped: execution {r.claim.execution_id} was cancelled"
                    r.task.cancel()
                    continue
                self.stats.lost += 1
                log.warning(
                    "lost the lease on %s %s (execution %s, attempt %d) to another worker; cancelling this run",
                    r.claim.namespace,
                    r.claim.task_id,
                    r.claim.execution_id[:8],
                    r.claim.attempt,
                )
                r.task.cancel()

    async def _cancelled_among(self, execution_ids: list[str]) -> set[str]:
        """Which of these executions were cancelled (their tasks' leases are gone for that reason)."""
        if not execution_ids:
            return set()
        try:
            return await self._db("reading cancelled executions", c.cancelled_executions, execution_ids)
        except StorageError as exc:
            log.warning("could not read which executions were cancelled: %s", str(exc).rstrip())
            return set()

    def _renew_all(self, conn: Any) -> set[tuple[str, str, int]]:
        return c.renew_leases(conn, owner=self.owner, lease_s=self.lease_s)

    async def _shutdown(self) -> None:
        running = list(self._running.values())
        if not running:
            return
        if not self._hurry.is_set() and self.grace_s > 0:
            log.info("stopping: letting %d running task(s) finish (up to %gs)", len(running), self.grace_s)
            all_done = asyncio.ensure_future(asyncio.wait({r.task for r in running}))
            hurry = asyncio.ensure_future(self._hurry.wait())
            try:
                await asyncio.wait({all_done, hurry}, timeout=self.grace_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                all_done.cancel()  # stops the waiting, not the tasks
                hurry.cancel()
        left = [r for r in self._running.values() if not r.task.done()]
        if not left:
            return
        for r in left:
            r.task.cancel()
        await asyncio.gather(*(r.task for r in left), return_exceptions=True)
        claims = [r.claim for r in left]
        reason = (
            f"released: worker {self.owner} was stopped before the task finished; it was handed back and runs again"
        )
        try:
            released = await self._db("releasing tasks", self._release, claims, reason)
        except StorageError as exc:
            log.error(
                "%s Their leases lapse in %gs and another worker runs them then.", str(exc).rstrip(), self.lease_s
            )
            return
        self.stats.released += len(released)
        for claim in released:
            log.info(
                "released %s %s (execution %s, attempt %d)",
                claim.namespace,
                claim.task_id,
                claim.execution_id[:8],
                claim.attempt,
            )

    def _release(self, conn: Any, claims: list[c.Claim], reason: str) -> list[c.Claim]:
        return c.release_tasks(conn, owner=self.owner, claims=claims, reason=reason)
