"""``DefaultRunner``: the durable engine's public face. Runs embedded and installed workflows alike.

A runner owns one database (SQLite file or PostgreSQL), one group-commit writer, a limit on tasks
running at once, and a lease on every execution it drives, renewed while it lives. When it starts
it resumes the executions of its tenant that no live host owns any more (``recover=True``); those
whose workflow it does not know yet resume when ``add_workflow`` adds it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping

import pluggy

from cloacina_workflow import DEFAULT_TENANT, Context, JSONValue, Workflow
from cloacina_workflow.limits import check_json_depth

from .._defaults import DEFAULT_LEASE_S, DEFAULT_MAX_CONCURRENT_TASKS
from .._discovery import CatalogEntry, WorkflowCatalog, discover
from .._errors import HostError, NotFoundError, UsageError
from .._storage import Database, ExecutionRecord, GroupCommitWriter
from .._storage import _ops as ops_
from .._storage import _queries as q
from .._storage._claims import DISTRIBUTED_OWNER
from .._storage._database import SqliteSynchronous
from .._storage._tenants import open_tenant_database
from ._events import EventEmitter
from ._execution import EngineServices, ExecutionRun
from ._guard import DaemonThreadExecutor
from ._inputs import check_start_input
from ._operate import CancelOutcome, actor_name, cancel_execution, cancel_requests, host_gone
from ._portal import LoopThread
from ._recovery import claim_to_resume, recorded_version, release, unfinished
from ._resolver import resolve_version
from ._results import ExecutionResult
from ._slots import Slots
from ._supervise import LoopDiedError, RenewalClock, died, watch

log = logging.getLogger("cloacina_host.engine")

ContextInput = Mapping[str, object] | Context | None


class DefaultRunner:
    """Runs workflows durably. ``async with DefaultRunner() as runner: await runner.execute("name", {...})``.

    ``database_url``: ``sqlite:///PATH`` or ``postgresql://USER:PASS@HOST/DB``; default
    ``$CLOACINA_DATABASE_URL``, else ``cloacina.db`` under the Cloacina home (``home``,
    ``$CLOACINA_HOME`` or ``~/.cloacina``). ``catalog``: the workflows it can run (default: every
    installed plugin, discovered on first use, and — through ``cloacina_host.DefaultRunner``, the
    composed host — the tenant's registered packages); ``add_workflow`` adds embedded ones.
    ``max_concurrent_tasks`` caps tasks running at once across all executions;
    ``default_timeout_s`` applies to tasks without their own ``timeout_s``.

    Use it from one event loop (the async methods), or from plain code through the ``*_sync``
    methods and ``close()`` (they run a private loop in a thread) — not both. ``database``: an open
    database to use instead of opening one (its owner, e.g. a ``cloacina-ctl`` command, closes it).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        catalog: WorkflowCatalog | None = None,
        home: str | os.PathLike[str] | None = None,
        tenant: str = DEFAULT_TENANT,
        max_concurrent_tasks: int = DEFAULT_MAX_CONCURRENT_TASKS,
        default_timeout_s: float | None = None,
        recover: bool = True,
        lease_s: float = DEFAULT_LEASE_S,
        sqlite_synchronous: SqliteSynchronous = "FULL",
        database: Database | None = None,
    ) -> None:
        if max_concurrent_tasks < 1:
            raise UsageError(f"max_concurrent_tasks must be at least 1, not {max_concurrent_tasks}.")
        if default_timeout_s is not None and default_timeout_s <= 0:
            raise UsageError(f"default_timeout_s must be a positive number of seconds, not {default_timeout_s}.")
        if lease_s <= 0:
            raise UsageError(f"lease_s must be a positive number of seconds, not {lease_s}.")
        self._database_url = database_url
        self._home = None if home is None else str(home)
        self._catalog = catalog
        self.tenant = tenant
        self.max_concurrent_tasks = max_concurrent_tasks
        self.default_timeout_s = default_timeout_s
        self.recover_on_start = recover
        self.lease_s = lease_s
        self.sqlite_synchronous: SqliteSynchronous = sqlite_synchronous
        #: who holds this runner's leases: ``host:pid:token``
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._db: Database | None = None
        self._given_db = database
        self._writer: GroupCommitWriter | None = None
        self._services: EngineServices | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_lock: asyncio.Lock | None = None
        self._runs: dict[str, ExecutionRun] = {}  # each execution this runner drives (``outcome``: its result)
        self._waiters: dict[str, list[asyncio.Future[ExecutionResult]]] = {}  # callers awaiting each one's end
        self._cancels: set[asyncio.Task[None]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._portal: LoopThread | None = None
        self._closed = False
        #: unfinished executions recovery found but could not resume, for want of their workflow
        self._waiting_for_workflow: dict[str, str] = {}  # execution id -> namespace
        self._recoveries: set[asyncio.Task[None]] = set()
        #: why the runner stopped on its own (a background loop died); raised to every caller after
        self._failure: LoopDiedError | None = None

    # -- what it runs -----------------------------------------------------------------------------

    @property
    def catalog(self) -> WorkflowCatalog:
        """The workflows this runner knows: the catalog given, else ``_default_catalog()`` on first access."""
        if self._catalog is None:
            self._catalog = self._default_catalog()
        return self._catalog

    def _default_catalog(self) -> WorkflowCatalog:
        """Installed plugins. The composed host (``cloacina_host._host``) adds the tenant's registry."""
        return discover()

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """Register observer plugins here (``runner.plugin_manager.register(obj)``) to hear events."""
        return self.catalog.plugin_manager

    def add_workflow(self, workflow: Workflow, package: str | None = None) -> CatalogEntry:
        """Make an embedded workflow (defined in the application's own code) runnable by name.

        Unfinished executions of it that recovery found before it was added are resumed now.
        """
        entry = self.catalog.add_workflow(workflow, package)
        if entry.namespace(self.tenant) in self._waiting_for_workflow.values():
            self._retry_recovery()
        return entry

    def _retry_recovery(self) -> None:
        """Run a recovery pass on the runner's loop, from its thread or any other."""
        loop = self._loop
        if loop is None or self._closed or loop.is_closed():
            return
        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        if here:
            self._start_recovery()
        else:
            loop.call_soon_threadsafe(self._start_recovery)

    def _start_recovery(self) -> None:
        if self._closed or self._db is None:
            return
        task = asyncio.ensure_future(self._recover_logged())
        self._recoveries.add(task)
        task.add_done_callback(self._recoveries.discard)

    async def _recover_logged(self) -> None:
        try:
            await self._recover()
        except HostError as exc:
            log.warning("recovering executions failed: %s", exc)

    def _entry(self, workflow: str | Workflow | CatalogEntry) -> CatalogEntry:
        if isinstance(workflow, CatalogEntry):
            return workflow
        if isinstance(workflow, Workflow):
            for entry in self.catalog.entries.values():
                if entry.workflow is workflow:
                    return entry
            return self.add_workflow(workflow)
        return self.catalog.resolve(workflow, tenant=self.tenant)

    @property
    def active_execution_ids(self) -> list[str]:
        """Executions this runner is driving now (new ones and resumed ones)."""
        return list(self._runs)

    @property
    def database(self) -> Database:
        if self._db is None:
            raise UsageError(
                "The runner is not started; use `async with DefaultRunner(...)` or `await runner.start()`."
            )
        return self._db

    @property
    def writer(self) -> GroupCommitWriter:
        if self._writer is None:
            raise UsageError(
                "The runner is not started; use `async with DefaultRunner(...)` or `await runner.start()`."
            )
        return self._writer

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open (and migrate) the database, start the writer, resume unfinished executions. Idempotent."""
        loop = asyncio.get_running_loop()
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise UsageError("This DefaultRunner is closed; create a new one.")
        if self._loop is not None and self._loop is not loop:
            raise UsageError(
                "This DefaultRunner was started on another event loop (or through its *_sync methods); "
                "use it from that loop only."
            )
        if self._db is not None and self._start_lock is not None and not self._start_lock.locked():
            return  # started (its recovery pass done): the hot path of every submit and wait
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._db is not None:
                return
            self._loop = loop
            if self._catalog is None:  # discovery imports plugins: never on the loop
                self._catalog = await asyncio.to_thread(self._default_catalog)
            catalog = self._catalog
            db = self._given_db
            if db is None:
                db = await asyncio.to_thread(
                    open_tenant_database,
                    self._database_url,
                    home=self._home,
                    tenant=self.tenant,
                    sqlite_synchronous=self.sqlite_synchronous,
                )
            writer = GroupCommitWriter(db)
            writer.on_death = lambda exc: self._died_elsewhere(loop, "group-commit writer", exc)
            writer.start()
            self._services = EngineServices(
                writer=writer,
                events=EventEmitter(catalog.plugin_manager),
                semaphore=Slots(self.max_concurrent_tasks),
                executor=DaemonThreadExecutor("cloacina-task"),
                owner=self.owner,
                lease_s=self.lease_s,
                default_timeout_s=self.default_timeout_s,
                on_end=self._forget,
            )
            self._db, self._writer = db, writer
            self._heartbeat = asyncio.ensure_future(self._renew_leases())
            watch(self._heartbeat, lambda exc: self._die("lease renewal", exc))
            if self.recover_on_start:
                await self._recover()

    async def aclose(self, *, cancel: bool = False) -> None:
        """Stop: wait for running executions (or ``cancel=True``: abandon them, resumable later), flush, close."""
        if self._closed:
            return
        self._closed = True
        if self._db is None:
            return
        recoveries = list(self._recoveries)  # passes started by add_workflow: what they resume is waited for too
        if cancel:
            for r in recoveries:
                r.cancel()
        await asyncio.gather(*recoveries, return_exceptions=True)
        await asyncio.gather(*list(self._cancels), return_exceptions=True)
        active = [run.outcome for run in self._runs.values()]
        if cancel:
            for t in active:
                t.cancel()
        await asyncio.gather(*active, return_exceptions=True)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        db, writer, services = self._db, self._writer, self._services
        assert writer is not None
        assert services is not None
        services.held.flush()  # records of attempts' starts still held: stored before the writer stops
        await asyncio.to_thread(writer.close)
        try:
            await asyncio.to_thread(self._release_leases, db)
        except HostError as exc:
            if self._failure is None:
                raise
            log.warning("could not release the leases of %s after it stopped: %s", self.owner, exc)
        finally:
            services.executor.shutdown(wait=False, cancel_futures=True)
            if db is not self._given_db:
                db.dispose()
            if self._catalog is not None:
                await self._catalog.aclose()  # workers of registered packages started on this loop

    def _release_leases(self, db: Database) -> None:
        with db.write("releasing leases") as conn:
            q.release_leases(conn, owner=self.owner)

    async def __aenter__(self) -> DefaultRunner:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        # the block raised (as a TaskGroup does): abandon what runs, resumable later, so that the error
        # is raised now instead of after executions that may wait on the block's own code; else let them finish
        await self.aclose(cancel=exc_type is not None)

    async def _renew_leases(self) -> None:
        """Every ``lease_s / 3``: extend the leases of the executions this runner drives.

        A failed renewal is retried at the next tick; once none succeeded for a whole lease, the
        loop dies (``RenewalClock``) and the runner stops (``_die``) rather than run on unleased.
        """
        interval = self.lease_s / 3
        clock = RenewalClock(self.lease_s)
        while True:
            await asyncio.sleep(interval)
            asked = time.monotonic()
            if not self._runs or self._writer is None:
                clock.renewed(asked)  # nothing held: nothing can lapse
                continue
            try:
                await self._writer.submit([ops_.renew_leases(self.owner, lease_expires_at=time.time() + self.lease_s)])
                asked_to_cancel = await asyncio.to_thread(cancel_requests, self.database, list(self._runs))
            except HostError as exc:
                log.warning("could not renew the leases of %s: %s", self.owner, exc)
                clock.failed(exc)
            else:
                clock.renewed(asked)
                for execution_id, actor in asked_to_cancel.items():  # asked from another process
                    self._cancel_run(execution_id, actor)

    def _cancel_run(self, execution_id: str, actor: str | None) -> None:
        """Cancel an execution this runner drives, in the background (seen at a lease renewal)."""
        run = self._runs.get(execution_id)
        if run is None:
            return
        log.info("cancelling execution %s of %s (asked by %s)", execution_id, run.namespace, actor or "someone")
        task = asyncio.ensure_future(run.cancel(actor))
        self._cancels.add(task)
        task.add_done_callback(self._cancel_done)

    def _cancel_done(self, task: asyncio.Task[None]) -> None:
        self._cancels.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("cancelling an execution failed: %s", task.exception())

    def _died_elsewhere(self, loop: asyncio.AbstractEventLoop, name: str, exc: BaseException | None) -> None:
        """``_die`` from another thread (the writer's)."""
        try:
            loop.call_soon_threadsafe(self._die, name, exc)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            log.error("the %s of %s died: %r", name, self.owner, exc)

    def _die(self, name: str, exc: BaseException | None) -> None:
        """Background loop ``name`` died of ``exc``: stop starting work, abandon what runs, tell every caller."""
        if self._failure is not None or self._closed:
            return
        self._failure = died(
            f"The runner {self.owner}",
            name,
            exc,
            "Its executions were abandoned; a host resumes them once their leases lapse "
            "(cloacina-ctl serve, or a DefaultRunner with recover=True).",
        )
        log.error("%s", self._failure)
        for t in self._recoveries:
            t.cancel()
        for run in list(self._runs.values()):
            run.outcome.cancel()

    def _outcome(self, execution_id: str, done: asyncio.Future[ExecutionResult]) -> asyncio.Future[ExecutionResult]:
        """What to await for the result of a driven execution (``LoopDiedError`` when the runner stopped).

        A plain future that ``_forget`` resolves when the execution ends: what ``asyncio.shield`` would
        do, without its outer future, two closures and a coroutine frame per waiting caller.
        Cancelling a caller never cancels the execution.
        """
        waiter: asyncio.Future[ExecutionResult] = asyncio.get_running_loop().create_future()
        if done.done():
            self._hand_over(waiter, done)
        else:
            self._waiters.setdefault(execution_id, []).append(waiter)
        return waiter

    def _hand_over(self, waiter: asyncio.Future[ExecutionResult], done: asyncio.Future[ExecutionResult]) -> None:
        """Give ``waiter`` the end of an execution: its result, or what it raised (nothing if its caller gave up)."""
        if waiter.done():  # its caller was cancelled
            return
        if not done.cancelled():
            exc = done.exception()
            if exc is None:
                waiter.set_result(done.result())
            else:
                waiter.set_exception(exc)
        elif self._failure is not None:
            waiter.set_exception(self._failure)  # its __cause__ is the loop's error: kept
        else:
            waiter.cancel()

    # -- running ----------------------------------------------------------------------------------

    async def submit(
        self,
        workflow: str | Workflow | CatalogEntry,
        context: ContextInput = None,
        *,
        detach: bool = False,
        distributed: bool = False,
        rerun_of: str | None = None,
    ) -> str:
        """Store a new execution of ``workflow`` and start it; return its id once it is durable.

        A name is resolved now: a registered package runs its active version, and the execution
        keeps that version to its end. ``detach=True`` only stores it, unowned, for a long-running
        host (``cloacina-ctl serve``) sharing the database to pick up. ``distributed=True``
        (PostgreSQL) stores it with its first tasks ready for ``cloacina-ctl worker`` processes,
        on any machine, to claim task by task; ``wait()`` reads its result from the database.
        """
        await self.start()
        # a name may be a registered workflow: the registry's lookup reads the database, off the loop
        if isinstance(workflow, str) and self.catalog.sources:
            entry = await asyncio.to_thread(self._entry, workflow)
        else:
            entry = self._entry(workflow)
        if not isinstance(context, Context) and context:
            check_json_depth(context, "the initial context")  # before Context walks it
        initial = (context if isinstance(context, Context) else Context(context or {})).to_dict()
        await check_start_input(entry.workflow, initial)  # a bad context is refused before anything is stored
        assert self._services is not None
        if distributed:
            return await self._submit_distributed(entry, initial, rerun_of)
        run = ExecutionRun.new(
            self._services, namespace=entry.namespace(self.tenant), workflow=entry.workflow, initial=initial
        )
        await self.writer.submit(
            run.insert_ops(
                tenant=self.tenant,
                package=entry.package,
                package_version=entry.source.version,
                workflow_fingerprint=entry.fingerprint,
                owned=not detach,
                rerun_of=rerun_of,
            )
        )
        if not detach:
            self._drive(run)
        return run.execution_id

    async def execute(
        self, workflow: str | Workflow | CatalogEntry, context: ContextInput = None, *, distributed: bool = False
    ) -> ExecutionResult:
        """Run ``workflow`` with ``context`` to its end; the result says whether it completed or failed."""
        execution_id = await self.submit(workflow, context, distributed=distributed)
        done = self._outcome_of(execution_id)
        if done is not None:  # driven here (the usual case): awaited without wait()'s frame per caller
            return await self._outcome(execution_id, done)
        return await self.wait(execution_id)

    async def _submit_distributed(
        self, entry: CatalogEntry, initial: dict[str, JSONValue], rerun_of: str | None = None
    ) -> str:
        from ._dispatch import store_execution

        assert self._services is not None
        namespace = entry.namespace(self.tenant)
        execution_id = await asyncio.to_thread(
            store_execution,
            self.database,
            tenant=self.tenant,
            namespace=namespace,
            package=entry.package,
            package_version=entry.source.version,
            workflow_fingerprint=entry.fingerprint,
            workflow=entry.workflow,
            initial=initial,
            rerun_of=rerun_of,
        )
        self._services.events.emit(
            "cloacina_execution_started", execution_id=execution_id, workflow=namespace, context=initial
        )
        return execution_id

    def _drive(self, run: ExecutionRun) -> None:
        if self._failure is not None:  # it stopped while this execution was being stored or claimed
            raise self._failure
        run.start()  # its end calls _forget (EngineServices.on_end)
        self._runs[run.execution_id] = run

    def _outcome_of(self, execution_id: str) -> asyncio.Future[ExecutionResult] | None:
        """The result's future of an execution this runner drives, else None."""
        run = self._runs.get(execution_id)
        return None if run is None else run.outcome

    def _forget(self, execution_id: str, done: asyncio.Future[ExecutionResult]) -> None:
        """An execution ended: forget it, and hand its end to whoever waits for it (``_outcome``)."""
        self._runs.pop(execution_id, None)
        for waiter in self._waiters.pop(execution_id, ()):
            self._hand_over(waiter, done)

    async def wait(self, execution_id: str, *, poll_s: float = 0.5) -> ExecutionResult:
        """The result of an execution: awaited if this runner drives it, else read (and polled) from storage."""
        await self.start()
        done = self._outcome_of(execution_id)
        if done is not None:
            return await self._outcome(execution_id, done)
        while True:
            record = await self.get_execution(execution_id)
            if record.status != "running":
                return ExecutionResult.from_record(record)
            done = self._outcome_of(execution_id)
            if done is not None:
                return await self._outcome(execution_id, done)
            await asyncio.sleep(poll_s)

    async def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The stored execution with its tasks and attempts; ``NotFoundError`` if there is none."""
        await self.start()
        db = self.database

        def read() -> ExecutionRecord | None:
            with db.read("reading an execution") as conn:
                return q.get_execution(conn, execution_id)

        record = await asyncio.to_thread(read)
        if record is None or record.tenant != self.tenant:
            raise NotFoundError(
                f"No execution {execution_id!r} in tenant {self.tenant!r} of {db.display_url}. "
                "List them with `cloacina-ctl executions list`."
            )
        return record

    # -- operating executions: cancel, retry, rerun -------------------------------------------------

    async def cancel(self, execution_id: str, *, actor: str | None = None) -> CancelOutcome:
        """Cancel ``execution_id`` wherever it runs; the request is stored with ``actor`` (default ``user@host``).

        This runner's own execution ends ``cancelled`` before this returns; one another host runs is
        stopped by that host at its next lease renewal (``ended=False``); one no host runs (queued,
        its host gone, distributed) is ended here. ``ExecutionEndedError`` if it has ended already.
        """
        await self.start()
        who = actor or actor_name()
        outcome = await asyncio.to_thread(
            cancel_execution, self.database, tenant=self.tenant, execution_id=execution_id, actor=who
        )
        run = self._runs.get(execution_id)
        if outcome.ended or run is None:
            return outcome
        await run.cancel(who)
        return CancelOutcome(execution_id, ended=True, owner=self.owner, status=run.result().status)

    async def retry(
        self, execution_id: str, *, latest: bool = False, detach: bool = False, actor: str | None = None
    ) -> str:
        """Run the failed, skipped and cancelled tasks of finished execution ``execution_id`` again, keeping its
        completed tasks and their outputs; return its id (``wait()`` for the result).

        On the version it started with (``latest=True``: the active one, refused if its tasks changed);
        ``detach=True`` leaves it to a ``cloacina-ctl serve`` sharing the database.
        """
        from ._operate import reset_for_retry

        record = await self.get_execution(execution_id)
        entry = await asyncio.to_thread(self._retry_entry, record, latest)
        await asyncio.to_thread(
            reset_for_retry,
            self.database,
            tenant=self.tenant,
            execution_id=record.id,
            workflow=entry.workflow,
            package_version=entry.source.version if entry.source.kind == "registered" else record.package_version,
            workflow_fingerprint=entry.fingerprint,
            latest=latest,
            owner=None if detach else self.owner,
            lease_s=self.lease_s,
            actor=actor or actor_name(),
        )
        if not detach:
            assert self._services is not None
            self._drive(ExecutionRun.resume(self._services, await self.get_execution(record.id), entry.workflow))
        return record.id

    def _retry_entry(self, record: ExecutionRecord, latest: bool) -> CatalogEntry:
        """The workflow a retry runs: the version the execution ran (a registered one), else the active one."""
        try:
            entry = self.catalog.resolve(record.namespace, tenant=self.tenant)
        except HostError:  # no active version now: the one it ran may still be registered
            if latest or record.package_version is None:
                raise
            _tenant, package, workflow = record.namespace.split("::", 2)
            return resolve_version(self.catalog, package, workflow, record.package_version)
        if latest or entry.source.kind != "registered" or record.package_version in (None, entry.source.version):
            return entry
        return resolve_version(self.catalog, entry.package, entry.workflow.name, record.package_version)

    async def rerun(
        self, execution_id: str, *, detach: bool = False, distributed: bool = False, actor: str | None = None
    ) -> str:
        """Start a new execution of ``execution_id``'s workflow with the same input (its ``rerun_of`` set);
        return the new id. The workflow resolves as for ``submit`` (a registered package's active version)."""
        from ._operate import record_event

        record = await self.get_execution(execution_id)
        entry = await asyncio.to_thread(self.catalog.resolve, record.namespace, tenant=self.tenant)
        new_id = await self.submit(entry, record.context_in, detach=detach, distributed=distributed, rerun_of=record.id)
        detail = {"execution_id": new_id, "version": entry.source.version}
        await asyncio.to_thread(
            record_event,
            self.database,
            execution_id=record.id,
            kind="rerun",
            actor=actor or actor_name(),
            detail=detail,
        )
        return new_id

    # -- recovery ---------------------------------------------------------------------------------

    def _is_stale(self, owner: str | None, expires: float | None, now: float) -> bool:
        if owner == DISTRIBUTED_OWNER:  # task by task, by `cloacina-ctl worker` processes: not resumed here
            return False
        return host_gone(owner, expires, now)

    async def recover(self) -> list[str]:
        """Resume this tenant's unfinished executions whose host is gone; return their ids.

        Done at start unless ``recover=False``. Completed tasks keep their stored output and never run
        again; an attempt that was running when its host died is marked ``interrupted`` and runs again.
        Executions of workflows this runner does not know are left for a host that does, or resumed
        as soon as ``add_workflow`` adds theirs to this runner.
        """
        await self.start()
        return await self._recover()

    async def _recover(self) -> list[str]:
        db = self.database
        assert self._services is not None
        resumed: list[str] = []
        now = time.time()
        for execution_id, namespace, owner, expires in await asyncio.to_thread(unfinished, db, self.tenant):
            if execution_id in self._runs or not self._is_stale(owner, expires, now):
                continue
            try:
                entry = await asyncio.to_thread(self.catalog.resolve, namespace)
            except HostError as exc:
                # a registered package with no active version now may still offer the version it recorded
                recorded = await asyncio.to_thread(recorded_version, self.catalog, db, execution_id, namespace)
                if recorded is None:
                    if execution_id not in self._waiting_for_workflow:  # said once, not at every pass
                        log.warning(
                            "cannot resume execution %s of %s here yet: %s It resumes once this runner knows "
                            "that workflow (add_workflow, an installed plugin or a registered package).",
                            execution_id,
                            namespace,
                            str(exc).rstrip(),
                        )
                    self._waiting_for_workflow[execution_id] = namespace
                    continue
                entry = recorded
            self._waiting_for_workflow.pop(execution_id, None)

            record = await asyncio.to_thread(claim_to_resume, db, execution_id, owner, self.owner, self.lease_s)
            if record is None:
                continue
            if entry.source.kind == "registered" and record.package_version not in (None, entry.source.version):
                try:  # it resumes on the version it started with, not on the active one
                    entry = await asyncio.to_thread(
                        resolve_version, self.catalog, entry.package, entry.workflow.name, record.package_version
                    )
                except HostError as exc:
                    log.warning("cannot resume execution %s of %s here: %s", execution_id, namespace, exc)
                    await asyncio.to_thread(release, db, execution_id, self.owner)
                    continue
            log.info("resuming execution %s of %s (was held by %s)", execution_id, namespace, owner)
            self._drive(ExecutionRun.resume(self._services, record, entry.workflow))
            resumed.append(execution_id)
        return resumed

    # -- the synchronous forms --------------------------------------------------------------------

    def _sync(self) -> LoopThread:
        if self._portal is None:
            if self._loop is not None:
                raise UsageError(
                    "This DefaultRunner runs on an event loop already; await its async methods instead of *_sync."
                )
            self._portal = LoopThread()
        return self._portal

    def start_sync(self) -> None:
        self._sync().run(self.start())

    def execute_sync(self, workflow: str | Workflow | CatalogEntry, context: ContextInput = None) -> ExecutionResult:
        """``execute`` for code without an event loop."""
        return self._sync().run(self.execute(workflow, context))

    def submit_sync(self, workflow: str | Workflow | CatalogEntry, context: ContextInput = None) -> str:
        return self._sync().run(self.submit(workflow, context))

    def wait_sync(self, execution_id: str) -> ExecutionResult:
        return self._sync().run(self.wait(execution_id))

    def cancel_sync(self, execution_id: str) -> CancelOutcome:
        return self._sync().run(self.cancel(execution_id))

    def retry_sync(self, execution_id: str, *, latest: bool = False, detach: bool = False) -> str:
        return self._sync().run(self.retry(execution_id, latest=latest, detach=detach))

    def rerun_sync(self, execution_id: str, *, detach: bool = False) -> str:
        return self._sync().run(self.rerun(execution_id, detach=detach))

    def close(self, *, cancel: bool = False) -> None:
        """Synchronous ``aclose`` for a runner used through the ``*_sync`` methods."""
        if self._portal is None:
            if self._loop is not None:
                raise UsageError("This DefaultRunner runs on an event loop; use `await runner.aclose()`.")
            self._closed = True
            return
        try:
            self._portal.run(self.aclose(cancel=cancel))
        finally:
            self._portal.stop()
            self._portal = None

    def __enter__(self) -> DefaultRunner:
        self.start_sync()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        self.close(cancel=exc_type is not None)  # as ``__aexit__``

    def __repr__(self) -> str:
        where = self._db.display_url if self._db is not None else (self._database_url or "default database")
        return f"<DefaultRunner {where} tenant={self.tenant!r} active={len(self._runs)}>"
