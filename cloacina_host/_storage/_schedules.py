"""The queries of cron schedules: the live schedules of a tenant, and claiming a fire time.

A fire time is claimed by inserting its ``schedule_fires`` row with ``ON CONFLICT DO NOTHING``
(SQLite and PostgreSQL alike), in the transaction that also stores the execution it starts: the
host whose insert wrote the row starts the execution, every other host's insert writes nothing and
it starts nothing. So any number of hosts, restarted any number of times, start each fire time once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from ._pauses import paused_names, record_pause
from ._schema import executions, schedule_fires, schedules, task_executions

if TYPE_CHECKING:
    from cloacina_workflow import Schedule

__all__ = [
    "ScheduleRow",
    "ScheduleSpec",
    "claim_fire",
    "clear_schedules",
    "list_schedules",
    "plugin_sources",
    "replace_schedules",
    "set_paused",
]

_s = schedules
_f = schedule_fires


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as a package version (or an installed plugin) declares it."""

    namespace: str  # tenant::package::workflow
    name: str
    cron: str
    timezone: str
    context: Mapping[str, Any] = field(default_factory=dict)
    catchup: str = "skip"
    max_catchup: int = 100

    @classmethod
    def of(cls, namespace: str, schedule: Schedule) -> ScheduleSpec:
        """What is stored of ``schedule``, a schedule of the workflow ``namespace``."""
        return cls(
            namespace=namespace,
            name=str(schedule.name),
            cron=schedule.cron,
            timezone=schedule.timezone,
            context=schedule.context,
            catchup=schedule.catchup,
            max_catchup=schedule.max_catchup,
        )


@dataclass(frozen=True)
class ScheduleRow:
    """A live schedule as stored, with its latest claimed fire time and the execution that started."""

    namespace: str
    name: str
    source: str
    package_version: str | None
    cron: str
    timezone: str
    context: dict[str, Any]
    catchup: str
    max_catchup: int
    paused: bool
    since: float
    updated_at: float
    last_fire_at: float | None = None
    last_execution_id: str | None = None

    @property
    def workflow_key(self) -> str:
        """``package::workflow``."""
        return self.namespace.split("::", 1)[1]


def _values(spec: ScheduleSpec) -> dict[str, Any]:
    return {
        "cron": spec.cron,
        "timezone": spec.timezone,
        "context": json.dumps(dict(spec.context), sort_keys=True, separators=(",", ":")),
        "catchup": spec.catchup,
        "max_catchup": spec.max_catchup,
    }


def replace_schedules(
    conn: Connection, *, source: str, package_version: str | None, specs: Sequence[ScheduleSpec], now: float
) -> None:
    """Make ``specs`` the schedules of ``source``, in the caller's transaction.

    A schedule kept by name keeps its paused state and its ``since``, unless its cron expression or
    time zone changed (then it counts fire times from ``now``); a new one starts at ``now``, paused when
    a user paused it by that name before (``_pauses``: its package was deactivated meanwhile); those
    ``source`` no longer declares are deleted (their fire history, and a pause, stay).
    """
    keys = {(s.namespace, s.name) for s in specs}
    current = {
        (str(r[0]), str(r[1])): (str(r[2]), str(r[3]))
        for r in conn.execute(
            select(_s.c.namespace, _s.c.name, _s.c.cron, _s.c.timezone).where(
                (_s.c.source == source) | _s.c.namespace.in_(sorted({s.namespace for s in specs}))
            )
        )
    }
    for namespace, name in current.keys() - keys:
        row = conn.execute(select(_s.c.source).where(_s.c.namespace == namespace, _s.c.name == name)).scalar()
        if row == source:
            conn.execute(delete(_s).where(_s.c.namespace == namespace, _s.c.name == name))
    paused = paused_names(conn, kind="schedule", scopes=[s.namespace for s in specs])
    for spec in specs:
        values = {**_values(spec), "source": source, "package_version": package_version, "updated_at": now}
        key = (spec.namespace, spec.name)
        if key not in current:
            stopped = int(key in paused)
            conn.execute(
                insert(_s).values(namespace=spec.namespace, name=spec.name, paused=stopped, since=now, **values)
            )
            continue
        if current[key] != (spec.cron, spec.timezone):
            values["since"] = now
        conn.execute(update(_s).where(_s.c.namespace == spec.namespace, _s.c.name == spec.name).values(**values))


def clear_schedules(conn: Connection, *, source: str) -> int:
    """Delete every schedule of ``source`` (a package deactivated or removed); return how many."""
    return int(conn.execute(delete(_s).where(_s.c.source == source)).rowcount)


def plugin_sources(conn: Connection) -> list[str]:
    """The ``plugin:DIST`` sources that have schedules stored."""
    query = select(_s.c.source).where(_s.c.source.like("plugin:%")).distinct()
    return [str(r[0]) for r in conn.execute(query)]


def list_schedules(conn: Connection, *, namespace: str | None = None) -> list[ScheduleRow]:
    """The tenant's live schedules with their latest fire, by namespace and name."""
    last = (
        select(_f.c.namespace, _f.c.schedule, func.max(_f.c.fire_at).label("fire_at"))
        .group_by(_f.c.namespace, _f.c.schedule)
        .subquery()
    )
    fired = _f.alias("fired")
    query = (
        select(_s, last.c.fire_at.label("last_fire_at"), fired.c.execution_id.label("last_execution_id"))
        .select_from(
            _s.outerjoin(last, and_(last.c.namespace == _s.c.namespace, last.c.schedule == _s.c.name)).outerjoin(
                fired,
                and_(
                    fired.c.namespace == _s.c.namespace,
                    fired.c.schedule == _s.c.name,
                    fired.c.fire_at == last.c.fire_at,
                ),
            )
        )
        .order_by(_s.c.namespace, _s.c.name)
    )
    if namespace is not None:
        query = query.where(_s.c.namespace == namespace)
    rows = []
    for r in conn.execute(query):
        m = r._mapping
        rows.append(
            ScheduleRow(
                namespace=m["namespace"],
                name=m["name"],
                source=m["source"],
                package_version=m["package_version"],
                cron=m["cron"],
                timezone=m["timezone"],
                context=json.loads(m["context"]),
                catchup=m["catchup"],
                max_catchup=int(m["max_catchup"]),
                paused=bool(m["paused"]),
                since=float(m["since"]),
                updated_at=float(m["updated_at"]),
                last_fire_at=m["last_fire_at"],
                last_execution_id=m["last_execution_id"],
            )
        )
    return rows


def set_paused(conn: Connection, *, namespace: str, names: Sequence[str], paused: bool, now: float) -> int:
    """Pause or resume schedules; a resumed one counts fire times from ``now`` (a pause is not caught up).

    The pause is remembered by name (``_pauses``), so it outlives a deactivation of the package.
    """
    values: dict[str, Any] = {"paused": int(paused), "updated_at": now}
    if not paused:
        values["since"] = now
    where = [_s.c.namespace == namespace, _s.c.name.in_(list(names)), _s.c.paused == int(not paused)]
    changing = conn.execute(select(_s.c.name, _s.c.source).where(*where)).all()
    for name, source in changing:
        record_pause(conn, kind="schedule", scope=namespace, name=name, source=source, paused=paused, now=now)
    return int(conn.execute(update(_s).where(*where).values(**values)).rowcount)


def _insert_ignoring_conflict(conn: Connection, row: Mapping[str, Any]) -> bool:
    """Insert a ``schedule_fires`` row unless its key exists; True when this insert wrote it."""
    keys = ["namespace", "schedule", "fire_at"]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        # psycopg may not report a row count here: RETURNING says whether the row was written
        claimed = pg_insert(_f).values(**row).on_conflict_do_nothing(index_elements=keys).returning(_f.c.fire_at)
        return conn.execute(claimed).first() is not None
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    statement = sqlite_insert(_f).values(**row).on_conflict_do_nothing(index_elements=keys)
    return int(conn.execute(statement).rowcount) == 1


def claim_fire(
    conn: Connection,
    *,
    namespace: str,
    schedule: str,
    fire_at: float,
    claimed_by: str,
    now: float,
    execution: Mapping[str, Any],
    tasks: Sequence[Mapping[str, Any]],
) -> bool:
    """Claim one fire time and store the execution it starts, in the caller's transaction.

    Returns False, storing nothing, when another host (or an earlier run of this one) claimed it.
    """
    row = {
        "namespace": namespace,
        "schedule": schedule,
        "fire_at": fire_at,
        "execution_id": execution["id"],
        "claimed_at": now,
        "claimed_by": claimed_by,
    }
    if not _insert_ignoring_conflict(conn, row):
        return False
    conn.execute(insert(executions).values(**execution))
    if tasks:
        conn.execute(insert(task_executions), [dict(t) for t in tasks])
    return True


def fire_count(conn: Connection, *, namespace: str, schedule: str) -> int:
    """How many fire times of one schedule were claimed (tests and ``schedules list``)."""
    query = select(func.count()).where(_f.c.namespace == namespace, _f.c.schedule == schedule)
    return int(conn.execute(query).scalar_one())
