"""Distributed executions: many ``cloacina-ctl worker`` processes, on many machines, share one PostgreSQL.

A submitter (``DefaultRunner.submit(..., distributed=True)``, ``cloacina-ctl run --distributed``)
stores the execution with its root tasks ``ready``. Each ``DistributedWorker`` claims ready task rows
(``SELECT … FOR UPDATE SKIP LOCKED``), runs them under a lease it renews, and ends its attempts in
batches: one transaction stores every end queued since the last one, makes ready each dependent
whose last parent that was (exactly once: the ends of one execution's tasks are serialised on its
row), finishes the executions whose every task has ended, and claims as many tasks as slots are
free, on one connection the worker keeps. Workers sleep on ``LISTEN/NOTIFY`` and poll every few seconds in case a
notification is lost. A task whose lease lapses (its worker died, hung, or lost the database) is
claimed again by another worker; the late worker's result is refused by a compare-and-swap.
The queries live in ``_storage/_claims`` (claims, leases) and ``_storage/_ends`` (batches of ends);
submitting and finding a claimed task's workflow in ``_dispatch``; what an attempt's end decides in
``_ends``; the transaction of a round in ``_rounds``; renewing leases, LISTEN and handing tasks back
in ``_leases``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cloacina_workflow import DEFAULT_TENANT, ContextConflict, JSONValue, Task, TaskStatus, Workflow
from cloacina_workflow import _machine as m

from .._defaults import DEFAULT_GRACE_S, DEFAULT_LEASE_S, DEFAULT_POLL_S, DEFAULT_WORKER_CONCURRENCY
from .._discovery import WorkflowCatalog
from .._errors import StorageError, UsageError
from .._output import AttemptOutput
from .._storage import Database, mask, parse_database_url
from .._storage import _claims as c
from .._storage._session import Session
from .._storage._tenants import open_tenant_database
from .._workers import STOP_REQUEST
from ._dispatch import WorkflowLoadError, WorkflowResolver, catalog_resolver
from ._ends import AGAIN, End, Outcome, loads_stored
from ._events import EventEmitter
from ._guard import DaemonThreadExecutor, TaskSlot, call_task, check_output_size
from ._leases import LeaseKeeping
from ._live import LiveOutputs, OutputRows, logged
from ._rounds import Round
from ._rows import dump_context
from ._supervise import LoopDiedError, died, watch
from ._worker_state import MAX_BACKOFF_S, Running, WorkerStats

log = logging.getLogger("cloacina_host.worker")

T = TypeVar("T")


def require_postgresql(url: str | None, home: str | None, what: str) -> None:
    """Refuse SQLite: distributed work is coordinated by PostgreSQL, shared by every machine."""
    from .._settings import default_database_url

    parsed = parse_database_url(url or default_database_url(home))
    if parsed.drivername == "sqlite":
        raise UsageError(
            f"{what} needs PostgreSQL, but {mask(parsed)} is a SQLite file: workers on several machines "
            "coordinate through one PostgreSQL database (SELECT … FOR UPDATE SKIP LOCKED, LISTEN/NOTIFY). "
            "Point --database-url (or CLOACINA_DATABASE_URL) at postgresql://USER:PASSWORD@HOST:PORT/DB, "
            "or run on one machine with `cloacina-ctl run WORKFLOW`."
        )


# -- the worker -----------------------------------------------------------------------------------


def _owner_name(name: str | None) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{name or uuid.uuid4().hex[:8]}"


class DistributedWorker(LeaseKeeping):
    """Claims and runs the ready tasks of distributed executions until ``stop()``; ``await worker.run()``.

    ``concurrency`` tasks at a time; each claim is held under a lease of ``lease_s`` seconds, renewed
    every ``lease_s / 3``. ``poll_s``: how long it sleeps at most without a notification. On ``stop()``
    it claims nothing more, lets running tasks finish for up to ``grace_s`` seconds, and hands the
    rest back (ready again at once, their attempt ``interrupted``).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        catalog: WorkflowCatalog | None = None,
        resolver: WorkflowResolver | None = None,
        database_opener: Callable[[], Database] | None = None,
        home: str | None = None,
        tenant: str = DEFAULT_TENANT,
        concurrency: int = DEFAULT_WORKER_CONCURRENCY,
        lease_s: float = DEFAULT_LEASE_S,
        poll_s: float = DEFAULT_POLL_S,
        grace_s: float = DEFAULT_GRACE_S,
        default_timeout_s: float | None = None,
        name: str | None = None,
        close_catalog: bool = True,
    ) -> None:
        if concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, not {concurrency}.")
        for label, value in (("lease_s", lease_s), ("poll_s", poll_s)):
            if value <= 0:
                raise UsageError(f"{label} must be a positive number of seconds, not {value}.")
        if grace_s < 0:
            raise UsageError(f"grace_s must be zero or more seconds, not {grace_s}.")
        self.database_url = database_url
        self.home = home
        self.tenant = tenant
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.grace_s = grace_s
        self.default_timeout_s = default_timeout_s
        self.catalog = catalog if catalog is not None else WorkflowCatalog()
        # one pooled connection per database thread: connections are never opened and closed per query
        self._db_threads = min(concurrency + 2, 10)
        #: connections the worker's database pool should keep open (one per database thread)
        self.db_threads = self._db_threads
        self.resolver = resolver or catalog_resolver(self.catalog)
        self._owns_db = database_opener is None  # a database from database_opener is its caller's to close
        #: False: the catalog (its package workers) is shared with a runner its caller stops after this worker
        self._close_catalog = close_catalog
        self._open = database_opener or (
            lambda: open_tenant_database(
                self.database_url, home=self.home, tenant=self.tenant, pool_size=self._db_threads
            )
        )
        #: who holds this worker's leases: ``host:pid:token``
        self.owner = _owner_name(name)
        #: the transaction of each round: store a batch of ends, claim
        self._round = Round(self.tenant, self.owner, self.lease_s, self.resolver)
        self.stats = WorkerStats()
        self.events = EventEmitter(self.catalog.plugin_manager)
        self.db: Database | None = None
        self._running: dict[tuple[str, str], Running] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._listening = False
        self._busy = 0  # places under ``concurrency`` held: running tasks and abandoned threads still running
        #: why the worker stopped on its own (a background loop died); ``run`` raises it
        self.failure: LoopDiedError | None = None
        self._db_pool = ThreadPoolExecutor(self._db_threads, thread_name_prefix="cloacina-db")
        # claims and batches of ends: one transaction at a time, on one kept connection, in one thread
        self._session: Session | None = None
        self._session_pool = ThreadPoolExecutor(1, thread_name_prefix="cloacina-claims")
        self._pumping = asyncio.Lock()
        self._ends: list[End] = []
        self._ended = asyncio.Event()  # ends are waiting to be stored
        self._freed = asyncio.Event()  # a running task's slot became free
        self._exhausted = False  # the last claim found fewer ready tasks than it asked for
        self._task_pool = DaemonThreadExecutor("cloacina-task")
        self._live = LiveOutputs(self._store_live)

    # -- control ----------------------------------------------------------------------------------

    def stop(self, *, now: bool = False) -> None:
        """Stop claiming and shut down gracefully; ``now=True`` (or a second call) skips the grace period."""
        if self._stopping.is_set() or now:
            self._hurry.set()
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._stopping.is_set()

    @property
    def running(self) -> list[c.Claim]:
        """The claims whose tasks run now."""
        return [r.claim for r in self._running.values()]

    @property
    def busy(self) -> int:
        """Places under ``concurrency`` taken now: running tasks, and abandoned threads that still run."""
        return self._busy

    async def _sleep(self, seconds: float, *events: asyncio.Event) -> None:
        """Sleep up to ``seconds``; return early when any of ``events`` is set."""
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> WorkerStats:
        """Serve until ``stop()``; return what was done.

        Its LISTEN and lease-renewal loops are supervised: if one dies, the worker claims nothing
        more, hands its running tasks back, and raises ``LoopDiedError`` saying why.
        """
        require_postgresql(self.database_url, self.home, "cloacina-ctl worker")
        self.db = await self._connect()
        if self.db is None:  # stopped while waiting for the database
            return self.stats
        log.info(
            "worker %s serving tenant %r of %s: concurrency %d, lease %gs",
            self.owner,
            self.tenant,
            self.db.display_url,
            self.concurrency,
            self.lease_s,
        )
        self._session = Session(self.db)
        helpers = [
            asyncio.ensure_future(self._listen()),
            asyncio.ensure_future(self._renew()),
            asyncio.ensure_future(self._flush()),
        ]
        for name, helper in zip(("LISTEN", "lease renewal", "the batching of task ends"), helpers, strict=True):
            watch(helper, functools.partial(self._die, name))
        try:
            await self._serve()
        finally:
            await self._shutdown()
            for h in helpers:
                h.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._task_pool.shutdown(wait=False, cancel_futures=True)
            self._db_pool.shutdown(wait=False, cancel_futures=True)
            closing = self._session_pool.submit(self._session.close)  # after the transaction in flight, if any
            self._session_pool.shutdown(wait=False)
            with contextlib.suppress(Exception):  # a hung transaction must not hang the shutdown
                await asyncio.wait_for(asyncio.wrap_future(closing), timeout=self.grace_s + 5)
            if self._owns_db:
                self.db.dispose()
            if self._close_catalog:
                await self.catalog.aclose()  # the workers of registered packages started on this loop
        if self.failure is not None:
            raise self.failure
        return self.stats

    def _die(self, name: str, exc: BaseException | None) -> None:
        """Loop ``name`` died of ``exc``: claim nothing more, hand running tasks back now, and say why."""
        if self.failure is not None or self._stopping.is_set():
            return
        self.failure = died(
            f"Worker {self.owner}",
            name,
            exc,
            "It claimed nothing more and handed its running tasks back (or their leases lapse); "
            "other workers run them.",
        )
        log.error("%s", self.failure)
        self.stop(now=True)

    async def _connect(self) -> Database | None:
        delay = 0.5
        attempt = 1
        while True:
            try:
                return await asyncio.to_thread(self._open)
            except StorageError as exc:
                if self._stopping.is_set():
                    return None
                if exc.permanent:  # a wrong password stays wrong: say so at once
                    raise
                log.warning("%s Retrying in %gs (attempt %d).", str(exc).rstrip(), delay, attempt)
            await self._sleep(delay, self._stopping)
            if self._stopping.is_set():
                return None
            delay = min(delay * 2, MAX_BACKOFF_S)
            attempt += 1

    async def _serve(self) -> None:
        """Claim whenever slots are free and ready tasks may be waiting (the ends' transactions claim too)."""
        backoff = 0.5
        while not self._stopping.is_set():
            timeout = self.poll_s
            if self._free() > 0 and not self._exhausted and not self._ends:
                try:
                    exhausted, due = await self._pump([])
                except StorageError as exc:
                    log.warning("%s Retrying in %gs.", str(exc).rstrip(), backoff)
                    await self._sleep(backoff, self._stopping)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    continue
                backoff = 0.5
                if not exhausted:
                    continue  # there may be more: claim again as soon as a slot frees
                if due is not None:
                    timeout = min(timeout, max(due, 0.05))
            waits: tuple[asyncio.Event, ...]
            if self._free() <= 0 or self._ends:
                waits = (self._freed, self._stopping)  # a slot freeing (or the ends' own claim) comes first
            elif self._exhausted:
                waits = (self._wake, self._stopping)  # nothing claimable until notified (or polled)
            else:
                waits = (self._wake, self._freed, self._stopping)
            self._freed.clear()
            await self._sleep(timeout, *waits)
            if self._wake.is_set() or not any(e.is_set() for e in waits):  # notified, or the poll is due
                self._exhausted = False

    def _free(self) -> int:
        return self.concurrency - self._busy

    def _frees_at_end(self, end: End) -> bool:
        """Whether storing ``end`` gives its place back (not when an abandoned thread of it still runs)."""
        running = self._running.get(end.claim.key)
        return running is not None and not running.slot.kept

    async def _pump(self, ends: list[End]) -> tuple[bool, float | None]:
        """One transaction: store ``ends``, then claim as many tasks as slots are free (ends' included).

        Returns whether the claim found fewer ready tasks than it asked for, and then the seconds
        until work falls due (None: nothing pending).
        """
        assert self._session is not None
        async with self._pumping:
            limit = 0 if self._stopping.is_set() else self._free() + sum(1 for e in ends if self._frees_at_end(e))
            if not ends and limit <= 0:
                return False, None
            if limit > 0:
                self._wake.clear()  # what is notified from now on may be missed by this claim: claim again
            outcomes, claims, due = await asyncio.get_running_loop().run_in_executor(
                self._session_pool,
                contextvars.copy_context().run,
                self._session.transaction,
                "storing the ends of tasks and claiming tasks" if ends else "claiming tasks",
                self._round,
                ends,
                limit,
            )
            for end, outcome in zip(ends, outcomes, strict=True):
                running = self._running.get(end.claim.key)
                if running is not None and running.claim is end.claim:
                    del self._running[end.claim.key]  # its slot is free now: its end is committed
                if not end.stored.done():
                    end.stored.set_result(outcome)
            for claim in claims:
                self._start(claim)
            if limit > 0:
                self._exhausted = len(claims) < limit
            return limit > 0 and len(claims) < limit, due

    def _start(self, claim: c.Claim) -> None:
        self.stats.claimed += 1
        if claim.reclaimed_from is not None:
            self.stats.reclaimed += 1
            log.warning(
                "reclaimed %s %s (execution %s, attempt %d): the lease of %s lapsed",
                claim.namespace,
                claim.task_id,
                claim.execution_id[:8],
                claim.attempt,
                claim.reclaimed_from,
            )
        else:
            log.info(
                "claimed %s %s (execution %s, attempt %d)",
                claim.namespace,
                claim.task_id,
                claim.execution_id[:8],
                claim.attempt,
            )
        self._busy += 1
        slot = TaskSlot(self._slot_free)
        task = asyncio.ensure_future(self._run_task(claim))
        running = self._running[claim.key] = Running(
            claim, task, time.monotonic(), slot, written=AttemptOutput(claim.task_id)
        )

        def done(_t: asyncio.Task[None]) -> None:
            if self._running.get(claim.key) is running:
                del self._running[claim.key]
            slot.done()  # frees the place (and sets _freed), unless an abandoned thread still holds it

        task.add_done_callback(done)

    def _slot_free(self) -> None:
        self._busy -= 1
        self._freed.set()

    # -- one task ---------------------------------------------------------------------------------

    async def _run_task(self, claim: c.Claim) -> None:
        running = self._running.get(claim.key)
        if running is not None:
            STOP_REQUEST.set(running.stop)
        started = time.monotonic()
        workflow: Workflow | None = None
        error: BaseException | None = None
        output: dict[str, JSONValue] | None = None
        try:
            workflow = await self.resolver(claim)
            task = workflow.task(claim.task_id)
        except Exception as exc:  # noqa: BLE001  # any failure to load fails this task, not the worker
            load_error = WorkflowLoadError(
                f"cannot load workflow {claim.namespace!r}"
                + (f" version {claim.package_version}" if claim.package_version else "")
                + f" for task {claim.task_id!r} in worker {self.owner}: {type(exc).__name__}: {exc}",
                namespace=claim.namespace,
            )
            load_error.__cause__ = exc
            error, workflow = load_error, None
        if workflow is not None:
            self.events.emit(
                "cloacina_task_started",
                execution_id=claim.execution_id,
                workflow=claim.namespace,
                task_id=claim.task_id,
                attempt=claim.attempt,
            )
            try:
                deps = task.dependencies
                parents = claim.parent_outputs
                if parents is None:
                    parents = {}
                    if deps:
                        parents = await self._db("reading task outputs", self._outputs, claim.execution_id, deps)
                initial = loads_stored(claim.context_in, "the execution's initial context")
                context = workflow.input_context(claim.task_id, initial, parents, self._conflict(claim))
                await self._call(task, context, claim)
                output = context.to_dict()
                # refuse what cannot be stored as the attempt's error, not the worker's
                check_output_size(dump_context(output, f"the output context of task {claim.task_id!r}"), claim.task_id)
            except Exception as exc:  # noqa: BLE001  # a task may raise anything; that fails the attempt
                error = exc
        await self._end(claim, workflow, output, error, time.monotonic() - started)

    def _store_live(self, rows: OutputRows) -> None:
        """Store running attempts' output so far (``LiveOutputs``), in a database thread."""
        stored = asyncio.ensure_future(self._db("storing task output", c.store_running_output, self.owner, rows))
        stored.add_done_callback(logged)

    def _outputs(self, conn: Any, execution_id: str, deps: Iterable[str]) -> dict[str, dict[str, Any]]:
        return c.outputs(conn, execution_id=execution_id, task_ids=deps)

    def _conflict(self, claim: c.Claim) -> Callable[[ContextConflict], None]:
        def on_conflict(conflict: ContextConflict) -> None:
            log.warning("execution %s, %s", claim.execution_id, m.conflict_text(conflict))

        return on_conflict

    async def _call(self, task: Task, context: Any, claim: c.Claim) -> None:
        running = self._running.get(claim.key)
        slot = None if running is None else running.slot
        written = None if running is None else running.written
        timeout = m.effective_timeout(task, self.default_timeout_s)
        if written is not None:
            self._live.watch(written, claim.execution_id, claim.task_id, claim.attempt)
        try:
            await call_task(task, context, timeout, self._task_pool, slot, written)
        finally:
            if written is not None:
                self._live.forget(written)
                written.finish()

    async def _end(
        self,
        claim: c.Claim,
        workflow: Workflow | None,
        output: dict[str, JSONValue] | None,
        error: BaseException | None,
        elapsed: float,
    ) -> None:
        running = self._running.get(claim.key)
        if running is not None:
            running.ending = True
        message = tb = None
        if error is not None:
            message = m.describe(error)
            tb = m.traceback_text(error)
        deadline = time.monotonic() + self.lease_s
        delay = 0.2
        while True:
            try:
                outcome = await self._store(claim, workflow, output, error, message, tb)
                break
            except StorageError as exc:
                if time.monotonic() > deadline or self._hurry.is_set():
                    log.error(
                        "%s Giving up on storing the end of %s %s (execution %s); its lease lapses and another "
                        "worker runs it again.",
                        str(exc).rstrip(),
                        claim.namespace,
                        claim.task_id,
                        claim.execution_id[:8],
                    )
                    return
                log.warning("%s Retrying in %gs.", str(exc).rstrip(), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        where = f"{claim.namespace} {claim.task_id} (execution {claim.execution_id[:8]}, attempt {claim.attempt})"
        if outcome.note is not None:  # what was stored instead of the error raised: a deferral's note, the cap's error
            message = outcome.note
        if outcome.lost:
            self.stats.lost += 1
            log.warning("lost the lease on %s to another worker; this run's result is discarded", where)
            return
        if outcome.status == TaskStatus.COMPLETED:
            self.stats.completed += 1
            log.info("completed %s in %.3fs", where, elapsed)
        elif outcome.status == TaskStatus.DEFERRED:
            self.stats.deferred += 1
            log.info("%s %s", where, message)
            self.events.emit(
                "cloacina_task_deferred",
                execution_id=claim.execution_id,
                workflow=claim.namespace,
                task_id=claim.task_id,
                attempt=claim.attempt,
                until=time.time() + (outcome.retry_delay_s or 0.0),
                note=message or "",
            )
        elif outcome.status == TaskStatus.RETRY_WAIT:
            self.stats.retried += 1
            log.info("failed %s: %s; retrying in %.2fs", where, message, outcome.retry_delay_s or 0.0)
            self.events.emit(
                "cloacina_task_retrying",
                execution_id=claim.execution_id,
                workflow=claim.namespace,
                task_id=claim.task_id,
                attempt=claim.attempt,
                error=message or "",
                delay_s=outcome.retry_delay_s or 0.0,
            )
        else:
            self.stats.failed += 1
            log.warning("failed %s for good: %s", where, message)
        if outcome.status not in AGAIN:
            for tid, status, err in [(claim.task_id, outcome.status, message)] + [
                (s, TaskStatus.SKIPPED, why) for s, why in outcome.skipped.items()
            ]:
                self.events.emit(
                    "cloacina_task_finished",
                    execution_id=claim.execution_id,
                    workflow=claim.namespace,
                    task_id=tid,
                    status=status,
                    attempts=claim.attempt if tid == claim.task_id else 0,
                    duration_s=elapsed if tid == claim.task_id else 0.0,
                    error=err,
                )
        if outcome.finished is not None:
            ended, context = outcome.finished
            log.info("execution %s of %s %s", claim.execution_id[:8], claim.namespace, ended)
            self.events.emit(
                "cloacina_execution_finished",
                execution_id=claim.execution_id,
                workflow=claim.namespace,
                status=ended,
                context=context,
            )

    async def _store(
        self,
        claim: c.Claim,
        workflow: Workflow | None,
        output: dict[str, JSONValue] | None,
        error: BaseException | None,
        message: str | None,
        tb: str | None,
    ) -> Outcome:
        """Queue the end of an attempt for the next batch; wait until it is committed (or refused)."""
        running = self._running.get(claim.key)
        end = End(claim, workflow, output, error, message, tb, asyncio.get_running_loop().create_future())
        end.written = None if running is None else running.written
        self._ends.append(end)
        self._ended.set()
        return await end.stored

    async def _flush(self) -> None:
        """Store the queued ends, a batch per transaction, as soon as the loop has nothing else to run."""
        while True:
            await self._ended.wait()
            await asyncio.sleep(0)  # tasks finishing in this same turn of the loop join the batch
            batch, self._ends = self._ends[: self.concurrency], self._ends[self.concurrency :]
            if not self._ends:
                self._ended.clear()
            try:
                await self._pump(batch)
            except BaseException as exc:
                for end in batch:
                    if not end.stored.done():
                        end.stored.set_exception(exc if isinstance(exc, Exception) else StorageError(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                if not isinstance(exc, StorageError):
                    log.exception("storing the ends of %d task(s) failed", len(batch))
