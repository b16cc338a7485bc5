"""``cloacina-ctl serve [--watch DIR]``: a long-running host: scheduler, recovery, and a reconciled directory.

Every ``--interval`` seconds it resumes the tenant's executions that no live host drives (those of
a host that died, and those stored with ``run --detach`` or ``submit(..., detach=True)``), stops
idle workers, and, with ``--watch DIR``, reconciles the directory's ``*.cloacina`` files with the
registry: a new file is registered (and activated), a replaced file's new version is registered and
activated (a hot swap: executions already running finish on the version they started with), and
the package of a removed file is deactivated. A version older than the active one is registered
but not activated (``--allow-downgrade`` activates it). A file that fails to register is reported
and left alone until it changes; the active version stays as it was. Reconciling runs beside the scheduler,
never in its way: a slow or hostile file delays only itself (see ``_reconcile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._defaults import DEFAULT_IDLE_TIMEOUT_S, DEFAULT_WORKER_CONCURRENCY
from ._common import Settings, global_options, max_concurrent_tasks_option, pass_settings
from ._reconcile import DEFAULT_FILE_TIMEOUT_S, DirectoryReconciler
from ._streams import package_output_to_stderr

if TYPE_CHECKING:
    from .._discovery import WorkflowCatalog
    from .._engine import DefaultRunner
    from .._host import Database, Host

__all__ = ["DirectoryReconciler", "Served", "serve_command"]


@dataclass(frozen=True)
class Served:
    """What a running ``_serve`` of one tenant is made of, for a caller that runs beside it (``server``)."""

    tenant: str
    host: Host
    runner: DefaultRunner
    database: Database


log = logging.getLogger("cloacina_host.serve")


@click.command("serve")
@click.option(
    "--watch",
    "watch",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Reconcile the *.cloacina files of DIR with the registry (register, hot-swap, deactivate).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to reconcile DIR and look for executions to pick up.",
)
@click.option(
    "--watch-timeout",
    "watch_timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_FILE_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="Time limit for reconciling one file of DIR (read, check, install, load); a file that exceeds it "
    "is reported and skipped until it changes.",
)
@click.option(
    "--allow-downgrade",
    is_flag=True,
    help="With --watch: activate a file's version even when it is older than the active one [default: register "
    "it, leave the newer one active].",
)
@click.option(
    "--schedule-tick",
    "schedule_tick",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="How often the scheduler looks for due fire times of the tenant's cron schedules.",
)
@click.option(
    "--clock-offset",
    "clock_offset",
    type=float,
    default=0.0,
    hidden=True,  # tests: the scheduler's clock runs this many seconds ahead, so a fire comes without waiting
    envvar="CLOACINA_SCHEDULER_CLOCK_OFFSET_S",
)
@max_concurrent_tasks_option
@click.option(
    "--worker-idle-timeout",
    "idle_timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_IDLE_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="Stop a package's worker process after this long without tasks (it restarts on demand).",
)
@click.option(
    "--distributed-concurrency",
    "distributed",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="On PostgreSQL, also run up to N tasks of distributed executions (`run --distributed`), sharing "
    "the work with any `cloacina-ctl worker` processes; 0 turns it off "
    f"[default: {DEFAULT_WORKER_CONCURRENCY} on PostgreSQL, 0 on SQLite].",
)
@global_options
@pass_settings
def serve_command(
    settings: Settings,
    watch: Path | None,
    interval: float,
    watch_timeout: float,
    allow_downgrade: bool,
    schedule_tick: float,
    clock_offset: float,
    max_concurrent_tasks: int,
    idle_timeout: float,
    distributed: int | None,
) -> None:
    """Run a long-lived host for the tenant: the scheduler, recovery, and (--watch) a package directory.

    It resumes executions no live host drives (a crashed host's, and those stored by
    `run --detach`), runs registered packages in worker processes (what tasks print goes to stderr),
    and with --watch DIR registers new .cloacina files, hot-swaps replaced ones (running executions
    finish on their version; an older version than the active one is registered but not activated,
    unless --allow-downgrade) and deactivates the package of a removed file. It fires the cron
    schedules of active versions and installed plugins (each fire time once, however many hosts
    serve the database). Stop it with Ctrl-C or SIGTERM: executions still running are left to
    resume later.
    """
    if watch is not None and not watch.is_dir():
        raise click.BadParameter(f"{watch} is not a directory.", param_hint="--watch")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("cloacina_host")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if settings.verbose else logging.WARNING)
    try:
        with package_output_to_stderr():  # and a closed stdout or stderr neither stops nor blocks it
            asyncio.run(
                _serve(
                    settings,
                    watch,
                    interval,
                    watch_timeout,
                    max_concurrent_tasks,
                    idle_timeout,
                    distributed,
                    allow_downgrade=allow_downgrade,
                    schedule_tick=schedule_tick,
                    clock_offset=clock_offset,
                )
            )
    finally:
        logger.removeHandler(handler)


async def _serve(
    settings: Settings,
    watch: Path | None,
    interval: float,
    watch_timeout: float,
    max_concurrent_tasks: int,
    idle_timeout: float,
    distributed: int | None,
    *,
    allow_downgrade: bool = False,
    schedule_tick: float = 1.0,
    clock_offset: float = 0.0,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Served], None] | None = None,
) -> None:
    """Serve ``settings.tenant`` until SIGINT/SIGTERM, or, when ``stop`` is given, until it is set (the
    caller handles signals). ``on_ready`` is called once the runner has started, before the first pass."""
    from .._engine import DefaultRunner
    from .._engine._distributed import DistributedWorker, require_postgresql
    from .._host import uses_postgresql

    on_postgresql = uses_postgresql(settings.database_url, settings.home)
    if distributed is None:
        distributed = DEFAULT_WORKER_CONCURRENCY if on_postgresql else 0
    elif distributed > 0:
        require_postgresql(settings.database_url, settings.home, "serve --distributed-concurrency")

    err = settings.err
    host = await asyncio.to_thread(settings.host, idle_timeout_s=idle_timeout)  # discovery: never on the loop
    catalog, registry = host.catalog, host.registry
    # the command's one database, shared by the registry, the runner and the embedded worker
    db = await asyncio.to_thread(settings.database, pool_size=4 + min(distributed + 2, 10) if distributed else 4)
    runner = DefaultRunner(
        settings.database_url,
        catalog=catalog,
        home=settings.home,
        tenant=settings.tenant,
        max_concurrent_tasks=max_concurrent_tasks,
        recover=False,
        database=db,
    )
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    stopped = stop

    def note(line: str) -> None:
        err.print(f"{time.strftime('%H:%M:%S')} {line}", markup=False, highlight=False)

    reconciler = (
        DirectoryReconciler(registry, watch, file_timeout_s=watch_timeout, report=note, allow_downgrade=allow_downgrade)
        if watch is not None
        else None
    )

    async def reconciling(reconciler: DirectoryReconciler) -> None:
        """Reconcile every ``interval`` beside the scheduler: a slow pass delays only the next pass."""
        while not stopped.is_set():
            try:
                await reconciler.reconcile()  # each change is noted as it happens
            except Exception as exc:  # noqa: BLE001  # reported; the next pass tries again
                note(f"reconciling {watch} failed: {type(exc).__name__}: {exc}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopped.wait(), interval)

    await runner.start()
    if on_ready is not None:
        on_ready(Served(settings.tenant, host, runner, db))
    scheduling_task = asyncio.ensure_future(
        _scheduling(runner, catalog, settings.tenant, schedule_tick, clock_offset, stop, note)
    )
    triggering_task = asyncio.ensure_future(_triggering(runner, catalog, settings.tenant, clock_offset, stop, note))
    worker: DistributedWorker | None = None
    worker_run: asyncio.Future[Any] | None = None
    if distributed:
        worker = DistributedWorker(
            settings.database_url,
            catalog=catalog,
            home=settings.home,
            tenant=settings.tenant,
            concurrency=distributed,
            grace_s=10.0,
            database_opener=lambda: db,
            # the runner shares its package workers: closed after the runner's executions are left
            close_catalog=False,
        )
        worker_run = asyncio.ensure_future(worker.run())
    watching_task = asyncio.ensure_future(reconciling(reconciler)) if reconciler is not None else None
    try:
        where = runner.database.display_url
        first = True
        while not stop.is_set():
            for execution_id in await runner.recover():
                note(f"picked up execution {execution_id}")
            await registry.pools.reap_idle()
            if first:
                watching = f"; watching {watch} every {interval:g} s" if watch is not None else ""
                shared = f"; running distributed tasks ({distributed} at once)" if worker is not None else ""
                note(f"serving tenant {settings.tenant!r} of {where}{watching}{shared}")
                first = False
            if worker_run is not None and worker_run.done():
                worker_run.result()  # the embedded worker died: report why, and stop
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if scheduling_task.done():
                scheduling_task.result()  # the scheduler died: report why, and stop
            if triggering_task.done():
                triggering_task.result()  # the trigger poller died: report why, and stop
    finally:
        scheduling_task.cancel()
        triggering_task.cancel()
        await asyncio.gather(scheduling_task, triggering_task, return_exceptions=True)
        if watching_task is not None and reconciler is not None:
            watching_task.cancel()
            await asyncio.gather(watching_task, return_exceptions=True)
            reconciler.close()  # a registration still running is abandoned (a daemon thread)
        if worker is not None and worker_run is not None:
            worker.stop()
            with contextlib.suppress(Exception):
                await worker_run
        note(f"stopping; {len(runner.active_execution_ids)} execution(s) still running are left to resume later")
        await runner.aclose(cancel=True)
        await registry.aclose()


async def _scheduling(
    runner: DefaultRunner,
    catalog: WorkflowCatalog,
    tenant: str,
    tick: float,
    clock_offset: float,
    stop: asyncio.Event,
    note: Callable[[str], None],
) -> None:
    """Every ``tick``: claim due fire times and start their executions here at once (see ``_engine._schedules``).

    A failing pass (the database away for a moment) is reported and the next pass tries again.
    """
    from .._engine._schedules import Scheduler, sync_installed_schedules

    def clock() -> float:
        return time.time() + clock_offset

    scheduler = Scheduler(runner.database, catalog, tenant=tenant, owner=runner.owner, now=clock)
    synced = passed = False
    while not stop.is_set():
        try:
            if not synced:  # installed plugins' schedules: written once, by each serve that has them
                live = await asyncio.to_thread(
                    sync_installed_schedules, runner.database, catalog, tenant=tenant, now=clock()
                )
                synced = True
                if live:
                    note(f"{live} schedule(s) of installed plugins are live")
            fired = await asyncio.to_thread(scheduler.tick)
            if not passed:
                passed = True
                live, paused = scheduler.seen
                note(f"scheduler: {live} live schedule(s) ({paused} paused), looking every {tick:g} s")
            for f in fired:
                note(f.describe())
            if fired:
                await runner.recover()  # start them here now, rather than at the next pass
        except Exception as exc:  # noqa: BLE001  # reported; the next pass tries again
            note(f"the scheduler's pass failed: {type(exc).__name__}: {exc}")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), tick)


#: How often ``serve`` looks for triggers due a poll (each is polled at its own interval).
TRIGGER_TICK_S = 0.25


async def _triggering(
    runner: DefaultRunner,
    catalog: WorkflowCatalog,
    tenant: str,
    clock_offset: float,
    stop: asyncio.Event,
    note: Callable[[str], None],
) -> None:
    """Poll the live triggers that are due, each in a task of its own (see ``_engine._triggers``).

    A failing pass (the database away for a moment) is reported and the next pass tries again; a
    failing poll is reported by the poller and never stops the others.
    """
    from .._engine._triggers import PollOutcome, TriggerPoller, sync_installed_triggers

    def clock() -> float:
        return time.time() + clock_offset

    fired = asyncio.Event()
    failing: dict[tuple[str, str], str] = {}  # each trigger's failure is noted when it changes, not every poll

    def report(outcome: PollOutcome) -> None:
        key = (outcome.package, outcome.trigger)
        if outcome.error is not None:
            if failing.get(key) != outcome.error:
                note(outcome.describe() + " (noted once; `cloacina-ctl triggers list` shows the latest)")
            failing[key] = outcome.error
            return
        if failing.pop(key, None) is not None:
            note(f"trigger {outcome.trigger} of {outcome.package} polls again without error")
        if outcome.execution_ids:
            note(outcome.describe())
            fired.set()

    poller = TriggerPoller(runner.database, catalog, tenant=tenant, owner=runner.owner, now=clock, report=report)
    synced = passed = False
    try:
        while not stop.is_set():
            try:
                if not synced:  # installed plugins' triggers: written once, by each serve that has them
                    live = await asyncio.to_thread(
                        sync_installed_triggers, runner.database, catalog, tenant=tenant, now=clock()
                    )
                    synced = True
                    if live:
                        note(f"{live} trigger(s) of installed plugins are live")
                await poller.tick()
                if not passed:
                    passed = True
                    live, paused = poller.seen
                    note(f"triggers: {live} live trigger(s) ({paused} paused)")
                if fired.is_set():
                    fired.clear()
                    await runner.recover()  # start them here now, rather than at the next pass
            except Exception as exc:  # noqa: BLE001  # reported; the next pass tries again
                note(f"the trigger poller's pass failed: {type(exc).__name__}: {exc}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), TRIGGER_TICK_S)
    finally:
        await poller.aclose()
