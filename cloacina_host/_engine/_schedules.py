"""The scheduler: start an execution at each due fire time of the tenant's live cron schedules.

Each ``tick()`` reads the live schedules (``schedules`` table), and for each that is not paused
works out the fire times due since the later of its last claimed fire and the moment it appeared
(``since``: history from before a schedule was registered is never backfilled). Catch-up:
``skip`` takes only the latest due time, ``all`` the latest ``max_catchup`` of them, oldest first.
Each due time is claimed by inserting its ``schedule_fires`` row in the transaction that stores
the execution (unowned, like ``run --detach``): only the host whose insert won starts it, so any
number of hosts, restarted any number of times, fire a time once. The stored execution is then
driven by whichever host's recovery picks it up (``serve`` asks its runner at once).

The clock is ``now`` (seconds since the epoch), so tests move time without sleeping.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cloacina_workflow import InputError
from cloacina_workflow._schedule import fire_times_before

from .._discovery import CatalogEntry, WorkflowCatalog
from .._errors import HostError
from .._storage import Database
from .._storage import _schedules as qs
from ._rows import execution_row, task_rows

__all__ = ["Fired", "Scheduler", "due_fire_times", "fire_label", "sync_installed_schedules"]

log = logging.getLogger("cloacina_host.schedules")

Clock = Callable[[], float]


def iso_utc(at: float) -> str:
    """``2026-12-01T19:00:00Z``."""
    return datetime.fromtimestamp(at, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def fire_label(schedule: str, fire_at: float) -> str:
    """What an execution records as what started it: ``schedule NAME at 2026-12-01T19:00:00Z``."""
    return f"schedule {schedule} at {iso_utc(fire_at)}"


def due_fire_times(cron: str, tz: str, *, catchup: str, max_catchup: int, after: float, now: float) -> list[float]:
    """The fire times to start now, oldest first: of those in ``(after, now]``, the latest one
    (``skip``) or the latest ``max_catchup`` (``all``)."""
    count = 1 if catchup == "skip" else max(1, max_catchup)
    return fire_times_before(cron, tz, after=after, until=now, count=count)


@dataclass(frozen=True)
class Fired:
    """A fire time this host claimed, and the execution it stored for it."""

    namespace: str
    schedule: str
    fire_at: float
    execution_id: str

    def describe(self) -> str:
        when = iso_utc(self.fire_at)
        return f"schedule {self.schedule} of {self.namespace} fired for {when}: execution {self.execution_id}"


def _specs(entry: CatalogEntry, tenant: str) -> list[qs.ScheduleSpec]:
    return [qs.ScheduleSpec.of(entry.namespace(tenant), s) for s in entry.workflow.schedules]


def sync_installed_schedules(database: Database, catalog: WorkflowCatalog, *, tenant: str, now: float) -> int:
    """Write the schedules of installed plugins (pip-installed distributions) into the tenant's table.

    Each distribution is the source ``plugin:DIST``; one no longer installed loses its schedules.
    Returns how many installed schedules are live.
    """
    by_source: dict[str, tuple[str | None, list[qs.ScheduleSpec]]] = {}
    for entry in catalog.entries.values():
        if entry.source.kind != "installed" or entry.source.distribution is None:
            continue
        source = f"plugin:{entry.source.distribution}"
        _version, specs = by_source.setdefault(source, (entry.source.version, []))
        specs.extend(_specs(entry, tenant))
    with database.write("storing the schedules of installed plugins") as conn:
        for stale in set(qs.plugin_sources(conn)) - set(by_source):
            qs.clear_schedules(conn, source=stale)
        for source, (version, specs) in by_source.items():
            qs.replace_schedules(conn, source=source, package_version=version, specs=specs, now=now)
    return sum(len(specs) for _v, specs in by_source.values())


class Scheduler:
    """Claims due fire times for one tenant and stores the executions they start (see the module)."""

    def __init__(
        self,
        database: Database,
        catalog: WorkflowCatalog,
        *,
        tenant: str,
        owner: str,
        now: Clock = time.time,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.tenant = tenant
        self.owner = owner
        self.now = now
        self._unresolved: dict[tuple[str, str], str] = {}  # said once per schedule, not at every tick
        #: how many live schedules the last pass saw, and how many of them were paused
        self.seen: tuple[int, int] = (0, 0)

    def tick(self) -> list[Fired]:
        """One pass over the live schedules (blocking: call it off the event loop)."""
        now = self.now()
        with self.database.read("reading the schedules") as conn:
            rows = qs.list_schedules(conn)
        self.seen = (len(rows), sum(r.paused for r in rows))
        fired: list[Fired] = []
        for row in rows:
            if row.paused:
                continue
            after = row.since if row.last_fire_at is None else max(row.since, row.last_fire_at)
            due = due_fire_times(
                row.cron, row.timezone, catchup=row.catchup, max_catchup=row.max_catchup, after=after, now=now
            )
            if due:
                fired += self._fire(row, due, now)
        return fired

    def _fire(self, row: qs.ScheduleRow, due: Sequence[float], now: float) -> list[Fired]:
        key = (row.namespace, row.name)
        try:
            entry = self.catalog.resolve(row.namespace)
        except HostError as exc:
            if self._unresolved.get(key) != str(exc):
                log.warning("schedule %s of %s cannot fire here: %s", row.name, row.namespace, str(exc).rstrip())
                self._unresolved[key] = str(exc)
            return []
        self._unresolved.pop(key, None)
        try:  # a registered package's model is in its worker: its schedules' contexts were checked when it loaded
            entry.workflow.check_input(row.context)
        except InputError as exc:
            if self._unresolved.get(key) != str(exc):
                log.warning("schedule %s of %s cannot fire: %s", row.name, row.namespace, exc)
                self._unresolved[key] = str(exc)
            return []
        fired = []
        for at in due:
            execution_id = str(uuid.uuid4())
            execution, tasks = self._rows(entry, row, execution_id, at, now)
            with self.database.write("claiming a schedule's fire time") as conn:
                won = qs.claim_fire(
                    conn,
                    namespace=row.namespace,
                    schedule=row.name,
                    fire_at=at,
                    claimed_by=self.owner,
                    now=time.time(),
                    execution=execution,
                    tasks=tasks,
                )
            if won:
                fired.append(Fired(row.namespace, row.name, at, execution_id))
        return fired

    def _rows(
        self, entry: CatalogEntry, row: qs.ScheduleRow, execution_id: str, at: float, now: float
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        execution = execution_row(
            execution_id,
            tenant=self.tenant,
            namespace=row.namespace,
            package=entry.package,
            workflow=entry.workflow,
            package_version=entry.source.version,
            workflow_fingerprint=entry.fingerprint,
            initial=row.context,
            created_at=time.time(),  # the wall clock: leases and listings use it (``now`` decides what is due)
            queued=True,  # a `serve` starts it, as one stored by `run --detach`
            started_by=fire_label(row.name, at),
        )
        return execution, task_rows(execution_id, entry.workflow)


# -- control: what `cloacina-ctl schedules` reads and changes --------------------------------------


@dataclass(frozen=True)
class ScheduleState:
    """A live schedule as ``schedules list`` shows it: the stored row and its next fire time."""

    row: qs.ScheduleRow
    next_fire_at: float | None  # None while paused


def schedule_states(database: Database, *, now: float) -> list[ScheduleState]:
    """The tenant's live schedules with their next fire times (an empty database has none)."""
    from .._storage import current_version

    with database.read("reading the schedules") as conn:
        if current_version(conn) < 4:  # nothing stored yet (a read-only command never creates the schema)
            return []
        rows = qs.list_schedules(conn)
    states = []
    for row in rows:
        following = None
        if not row.paused:
            after = max(now, row.since, row.last_fire_at or 0.0)
            found = row_next(row, after)
            following = found[0] if found else None
        states.append(ScheduleState(row, following))
    return states


def row_next(row: qs.ScheduleRow, after: float, count: int = 1) -> list[float]:
    from cloacina_workflow._schedule import fire_times_after

    return fire_times_after(row.cron, row.timezone, after, count)


def _matching(rows: Sequence[qs.ScheduleRow], workflow: str, tenant: str) -> list[qs.ScheduleRow]:
    """Rows of the workflow named ``workflow``, ``package::workflow`` or ``tenant::package::workflow``."""
    exact = [r for r in rows if workflow in (r.namespace, r.workflow_key)]
    if exact:
        return exact
    return [r for r in rows if r.namespace.startswith(f"{tenant}::") and r.namespace.endswith(f"::{workflow}")]


def set_paused(
    database: Database, *, tenant: str, workflow: str, name: str | None, paused: bool, now: float
) -> list[qs.ScheduleRow]:
    """Pause (or resume) the schedule ``name`` of ``workflow``, or all its schedules; return those changed.

    Resuming counts fire times from ``now``: the time spent paused is not caught up.
    ``NotFoundError`` (exit 3) for a workflow or schedule with no live schedule.
    """
    from .._errors import NotFoundError, UsageError

    with database.write("pausing or resuming schedules") as conn:
        rows = qs.list_schedules(conn)
        matched = _matching(rows, workflow, tenant)
        known = ", ".join(sorted({f"{r.workflow_key} {r.name}" for r in rows})) or "none"
        if not matched:
            raise NotFoundError(
                f"No live schedule belongs to workflow {workflow!r} in tenant {tenant!r} (live schedules: {known}). "
                "See `cloacina-ctl schedules list`."
            )
        namespaces = sorted({r.namespace for r in matched})
        if len(namespaces) > 1:
            raise UsageError(
                f"Workflow {workflow!r} is ambiguous: {', '.join(n.split('::', 1)[1] for n in namespaces)}. "
                "Name it as PACKAGE::WORKFLOW."
            )
        chosen = [r for r in matched if name is None or r.name == name]
        if not chosen:
            raise NotFoundError(
                f"Workflow {matched[0].workflow_key} has no schedule {name!r} (it has: "
                f"{', '.join(r.name for r in matched)})."
            )
        qs.set_paused(conn, namespace=namespaces[0], names=[r.name for r in chosen], paused=paused, now=now)
        changed = {r.name for r in chosen if r.paused != paused}
    return [r for r in chosen if r.name in changed]
