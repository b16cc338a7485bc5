"""The trigger poller: poll each live trigger every ``poll_interval_s``; a firing starts each subscribed workflow once.

Each ``tick()`` reads the live triggers (``triggers`` table); for each that is not paused, not being
polled here already and due, it claims the poll in the database (``_storage._triggers.claim_poll``:
one host per interval, however many share the database) and, if it won, polls the trigger in a task
of its own: in the package's worker process for a registered package, in this process for an
installed plugin. A poll that raises, returns something else than ``Fire``/``None`` or outlasts the
trigger's ``timeout_s`` is logged and stored as ``last_error``; the next interval polls it again, and
no poll waits for another. A ``Fire`` stores one queued execution per subscribed workflow, started
by ``trigger NAME``, in the transaction that records the firing; ``serve`` then starts them.

The clock is ``now`` (seconds since the epoch), so tests move time without sleeping.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cloacina_workflow import PollInfo, Trigger

from .._discovery import CatalogEntry, WorkflowCatalog
from .._errors import HostError, NotFoundError, UsageError
from .._storage import Database, current_version
from .._storage import _triggers as qt
from ._inputs import check_start_input
from ._rows import execution_row, task_rows

__all__ = [
    "PollOutcome",
    "TriggerPoller",
    "fire_trigger",
    "installed_trigger_specs",
    "set_trigger_paused",
    "started_by",
    "sync_installed_triggers",
    "trigger_rows",
]

log = logging.getLogger("cloacina_host.triggers")

Clock = Callable[[], float]


def started_by(name: str) -> str:
    """What an execution a trigger started records: ``trigger NAME``."""
    return f"trigger {name}"


@dataclass(frozen=True)
class PollOutcome:
    """What one poll did: fired (the executions it stored), did not, or failed (why)."""

    package: str
    trigger: str
    execution_ids: tuple[str, ...] = ()
    error: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"trigger {self.trigger} of {self.package} failed (polled again next interval): {self.error}"
        if self.execution_ids:
            return f"trigger {self.trigger} of {self.package} fired: execution(s) {', '.join(self.execution_ids)}"
        return f"trigger {self.trigger} of {self.package}: not now"


# -- what is live ----------------------------------------------------------------------------------


def installed_trigger_specs(entries: Sequence[CatalogEntry], tenant: str) -> list[qt.TriggerSpecRow]:
    """The triggers of some installed workflows (one distribution's), with the workflows each starts."""
    found: dict[tuple[str, str], tuple[Trigger, list[str]]] = {}
    for entry in entries:
        for t in entry.workflow.triggers:
            _trigger, workflows = found.setdefault((entry.package, t.name), (t, []))
            workflows.append(entry.namespace(tenant))
    return [
        qt.TriggerSpecRow(package, name, t.spec.poll_interval_s, t.spec.timeout_s, tuple(workflows))
        for (package, name), (t, workflows) in sorted(found.items())
    ]


def sync_installed_triggers(database: Database, catalog: WorkflowCatalog, *, tenant: str, now: float) -> int:
    """Write the triggers of installed plugins into the tenant's table (source ``plugin:DIST``); how many are live."""
    by_source: dict[str, tuple[str | None, list[CatalogEntry]]] = {}
    for entry in catalog.entries.values():
        if entry.source.kind != "installed" or entry.source.distribution is None:
            continue
        _v, entries = by_source.setdefault(f"plugin:{entry.source.distribution}", (entry.source.version, []))
        entries.append(entry)
    live = 0
    with database.write("storing the triggers of installed plugins") as conn:
        for stale in set(qt.plugin_sources(conn)) - set(by_source):
            qt.clear_triggers(conn, source=stale)
        for source, (version, entries) in by_source.items():
            specs = installed_trigger_specs(entries, tenant)
            qt.replace_triggers(conn, source=source, package_version=version, specs=specs, now=now)
            live += len(specs)
    return live


def trigger_rows(database: Database) -> list[qt.TriggerRow]:
    """The tenant's live triggers (an empty database has none: a read never creates the schema)."""
    with database.read("reading the triggers") as conn:
        if current_version(conn) < 5:
            return []
        return qt.list_triggers(conn)


# -- firing ------------------------------------------------------------------------------------------


def _started(
    catalog: WorkflowCatalog, row: qt.TriggerRow, context: Mapping[str, Any], *, tenant: str
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """One queued execution (and its tasks) per workflow the trigger starts; ``HostError`` when one cannot."""
    started = []
    for namespace in row.workflows:
        entry = catalog.resolve(namespace)
        execution_id = str(uuid.uuid4())
        execution = execution_row(
            execution_id,
            tenant=tenant,
            namespace=namespace,
            package=entry.package,
            workflow=entry.workflow,
            package_version=entry.source.version,
            workflow_fingerprint=entry.fingerprint,
            initial=dict(context),
            created_at=time.time(),
            queued=True,  # a `serve` starts it, as one stored by `run --detach`
            started_by=started_by(row.name),
        )
        started.append((execution, task_rows(execution_id, entry.workflow)))
    return started


async def _check_inputs(catalog: WorkflowCatalog, row: qt.TriggerRow, context: Mapping[str, Any]) -> None:
    """``InputError`` (nothing stored) unless ``context`` fits the input of every workflow the trigger starts."""
    for namespace in row.workflows:
        await check_start_input(catalog.resolve(namespace).workflow, context)


def _store_fire(
    database: Database,
    catalog: WorkflowCatalog,
    row: qt.TriggerRow,
    context: Mapping[str, Any],
    *,
    tenant: str,
    now: float,
) -> tuple[str, ...]:
    started = _started(catalog, row, context, tenant=tenant)
    with database.write("storing a trigger's firing") as conn:
        qt.record_fire(conn, package=row.package, name=row.name, now=now, started=started)
    return tuple(str(execution["id"]) for execution, _tasks in started)


def _find(rows: Sequence[qt.TriggerRow], name: str, tenant: str) -> qt.TriggerRow:
    """The trigger called ``name`` or ``package::name``; ``NotFoundError`` (exit 3) or ambiguous (exit 2)."""
    matched = [r for r in rows if name in (r.key, r.name)]
    if not matched:
        known = ", ".join(r.key for r in rows) or "none"
        raise NotFoundError(
            f"No live trigger {name!r} in tenant {tenant!r} (live triggers: {known}). "
            "See `cloacina-ctl triggers list`; a package's triggers are live while a version of it is active."
        )
    if len(matched) > 1:
        raise UsageError(
            f"Trigger {name!r} is ambiguous: {', '.join(r.key for r in matched)}. Name it as PACKAGE::TRIGGER."
        )
    return matched[0]


def fire_trigger(
    database: Database,
    catalog: WorkflowCatalog,
    *,
    tenant: str,
    name: str,
    context: Mapping[str, Any],
    now: float,
) -> tuple[qt.TriggerRow, tuple[str, ...]]:
    """Fire trigger ``name`` by hand with ``context``: store one queued execution per subscribed workflow."""
    row = _find(trigger_rows(database), name, tenant)
    asyncio.run(_check_inputs(catalog, row, context))  # a registered package's model is asked in its worker
    return row, _store_fire(database, catalog, row, context, tenant=tenant, now=now)


async def fire_trigger_async(
    database: Database,
    catalog: WorkflowCatalog,
    *,
    tenant: str,
    name: str,
    context: Mapping[str, Any],
    now: float,
) -> tuple[qt.TriggerRow, tuple[str, ...]]:
    """``fire_trigger`` on a running event loop (the server's): the same checks, the database off the loop."""
    row = await asyncio.to_thread(lambda: _find(trigger_rows(database), name, tenant))
    await _check_inputs(catalog, row, context)
    ids = await asyncio.to_thread(lambda: _store_fire(database, catalog, row, context, tenant=tenant, now=now))
    return row, ids


def set_trigger_paused(
    database: Database, *, tenant: str, name: str, paused: bool, now: float
) -> tuple[qt.TriggerRow, bool]:
    """Pause (or resume) one trigger; return it and whether it changed. Unknown: ``NotFoundError``."""
    row = _find(trigger_rows(database), name, tenant)
    with database.write("pausing or resuming a trigger") as conn:
        changed = qt.set_paused(conn, package=row.package, name=row.name, paused=paused, now=now)
    return row, changed


# -- polling ------------------------------------------------------------------------------------------


class TriggerPoller:
    """Polls the tenant's due triggers, each in a task of its own (see the module)."""

    def __init__(
        self,
        database: Database,
        catalog: WorkflowCatalog,
        *,
        tenant: str,
        owner: str,
        now: Clock = time.time,
        report: Callable[[PollOutcome], None] | None = None,
    ) -> None:
        self.database = database
        self.catalog = catalog
        self.tenant = tenant
        self.owner = owner
        self.now = now
        self.report = report
        self._polling: dict[tuple[str, str], asyncio.Task[PollOutcome]] = {}
        #: how many live triggers the last pass saw, and how many of them were paused
        self.seen: tuple[int, int] = (0, 0)

    async def tick(self) -> list[asyncio.Task[PollOutcome]]:
        """Claim and start the polls that are due; return them (running: ``drain()`` waits for them)."""
        rows = await asyncio.to_thread(trigger_rows, self.database)
        self.seen = (len(rows), sum(r.paused for r in rows))
        now = self.now()
        started = []
        for row in rows:
            key = (row.package, row.name)
            if row.paused or key in self._polling:
                continue
            if row.last_poll_at is not None and row.last_poll_at > now - row.poll_interval_s + 0.01:
                continue  # not due: no write
            if not await asyncio.to_thread(self._claim, row, now):
                continue
            task = asyncio.ensure_future(self._poll(row))
            self._polling[key] = task
            task.add_done_callback(functools.partial(self._forget, key))
            started.append(task)
        return started

    def _forget(self, key: tuple[str, str], _task: object) -> None:
        self._polling.pop(key, None)

    async def drain(self) -> list[PollOutcome]:
        """Wait for the polls running now."""
        return list(await asyncio.gather(*self._polling.values()))

    async def aclose(self) -> None:
        for task in list(self._polling.values()):
            task.cancel()
        await asyncio.gather(*self._polling.values(), return_exceptions=True)

    def _claim(self, row: qt.TriggerRow, now: float) -> bool:
        with self.database.write("claiming a trigger's poll") as conn:
            return qt.claim_poll(conn, package=row.package, name=row.name, owner=self.owner, now=now)

    def _trigger(self, row: qt.TriggerRow) -> Trigger:
        entry = self.catalog.resolve(row.workflows[0])
        for t in entry.workflow.triggers:
            if t.name == row.name:
                return t
        raise HostError(f"workflow {entry.key} loaded here has no trigger {row.name!r} (another version?)")

    async def _poll(self, row: qt.TriggerRow) -> PollOutcome:
        try:
            trigger = self._trigger(row)
            fired = await asyncio.wait_for(trigger.poll(PollInfo(row.name, row.last_fire_at)), row.timeout_s)
            ids: tuple[str, ...] = ()
            if fired is not None:
                await _check_inputs(self.catalog, row, fired.context)  # a misfit is this poll's failure
                ids = await asyncio.to_thread(
                    _store_fire, self.database, self.catalog, row, fired.context, tenant=self.tenant, now=self.now()
                )
            outcome = PollOutcome(row.package, row.name, ids)
        except asyncio.TimeoutError:
            outcome = await self._failed(row, f"the poll did not finish within its timeout of {row.timeout_s:g} s")
        except asyncio.CancelledError:
            raise
        except HostError as exc:  # the worker's account already names the error's type
            outcome = await self._failed(row, str(exc).strip())
        except Exception as exc:  # noqa: BLE001  # reported and stored; the next interval polls again
            outcome = await self._failed(row, f"{type(exc).__name__}: {str(exc).strip()}")
        await self._end_poll(row, succeeded=outcome.error is None)
        if self.report is not None:
            self.report(outcome)
        return outcome

    async def _end_poll(self, row: qt.TriggerRow, *, succeeded: bool) -> None:
        """Let the next interval's poll be claimed now (else it waits for this claim's ``timeout_s`` to lapse);
        a poll that ``succeeded`` clears the failure an earlier one stored."""

        def store() -> None:
            with self.database.write("ending a trigger's poll") as conn:
                qt.end_poll(conn, package=row.package, name=row.name, owner=self.owner, succeeded=succeeded)

        try:
            await asyncio.to_thread(store)
        except Exception as exc:  # noqa: BLE001  # the claim lapses at its timeout instead
            log.warning("could not store the end of trigger %s's poll: %s", row.name, exc)

    async def _failed(self, row: qt.TriggerRow, error: str) -> PollOutcome:
        if self.report is None:  # a reporter (serve) says it itself
            log.warning("trigger %s of %s failed: %s", row.name, row.package, error)

        def store() -> None:
            with self.database.write("recording a trigger's failure") as conn:
                qt.record_error(conn, package=row.package, name=row.name, error=error, now=self.now())

        try:
            await asyncio.to_thread(store)
        except Exception as exc:  # noqa: BLE001  # the database away for a moment: the log line stays
            log.warning("could not store the failure of trigger %s: %s", row.name, exc)
        return PollOutcome(row.package, row.name, error=error)
