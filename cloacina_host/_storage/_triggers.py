"""The queries of poll triggers: the live triggers of a tenant, claiming a poll, recording what it did.

A poll is claimed by an ``UPDATE`` that moves ``last_poll_at`` to now only where it is unset or at
least one interval old, no poll is in flight (``polling_until``, cleared when the poll ends, lapsing
at claim + ``timeout_s`` if its host died) and the trigger is not paused: on SQLite writes are
serialised, on PostgreSQL a second host's update waits for the first and then finds the condition
false. So one host polls each interval, however many share the database, a poll slower than its
interval is never overlapped by another host's (two polls could both see one event), and one
firing starts each subscribed workflow once (its executions are stored in the transaction that
records the firing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from ._pauses import paused_names, record_pause
from ._schema import executions, task_executions, triggers

__all__ = [
    "TriggerRow",
    "TriggerSpecRow",
    "claim_poll",
    "clear_triggers",
    "end_poll",
    "list_triggers",
    "plugin_sources",
    "record_error",
    "record_fire",
    "replace_triggers",
    "set_paused",
]

_t = triggers
#: Slack when comparing a poll's age to its interval: a host looking a hair early still claims it.
_SLACK_S = 0.01


@dataclass(frozen=True)
class TriggerSpecRow:
    """A trigger as a package version (or an installed plugin) declares it."""

    package: str
    name: str
    poll_interval_s: float
    timeout_s: float
    workflows: tuple[str, ...]  # namespaces (tenant::package::workflow)


@dataclass(frozen=True)
class TriggerRow:
    """A live trigger as stored."""

    package: str
    name: str
    source: str
    package_version: str | None
    poll_interval_s: float
    timeout_s: float
    workflows: tuple[str, ...]
    paused: bool
    last_poll_at: float | None
    polled_by: str | None
    last_error: str | None
    last_error_at: float | None
    last_fire_at: float | None
    last_executions: tuple[str, ...]
    updated_at: float

    @property
    def key(self) -> str:
        """``package::name``."""
        return f"{self.package}::{self.name}"


def replace_triggers(
    conn: Connection, *, source: str, package_version: str | None, specs: Sequence[TriggerSpecRow], now: float
) -> None:
    """Make ``specs`` the triggers of ``source`` in the caller's transaction; a kept one keeps its state, a
    new one is paused when a user paused it by that name before (``_pauses``: its package was deactivated)."""
    current = {
        (str(r[0]), str(r[1])): str(r[2])
        for r in conn.execute(select(_t.c.package, _t.c.name, _t.c.source).where(_t.c.source == source))
    }
    keys = {(s.package, s.name) for s in specs}
    for package, name in current.keys() - keys:
        conn.execute(delete(_t).where(_t.c.package == package, _t.c.name == name))
    paused = paused_names(conn, kind="trigger", scopes=[s.package for s in specs])
    for spec in specs:
        values = {
            "source": source,
            "package_version": package_version,
            "poll_interval_s": spec.poll_interval_s,
            "timeout_s": spec.timeout_s,
            "workflows": json.dumps(list(spec.workflows)),
            "updated_at": now,
        }
        where = (_t.c.package == spec.package, _t.c.name == spec.name)
        if conn.execute(select(_t.c.name).where(*where)).first() is None:
            stopped = int((spec.package, spec.name) in paused)
            conn.execute(insert(_t).values(package=spec.package, name=spec.name, paused=stopped, **values))
        else:
            conn.execute(update(_t).where(*where).values(**values))


def clear_triggers(conn: Connection, *, source: str) -> int:
    """Delete every trigger of ``source`` (a package deactivated or removed); return how many."""
    return int(conn.execute(delete(_t).where(_t.c.source == source)).rowcount)


def plugin_sources(conn: Connection) -> list[str]:
    """The ``plugin:DIST`` sources that have triggers stored."""
    query = select(_t.c.source).where(_t.c.source.like("plugin:%")).distinct()
    return [str(r[0]) for r in conn.execute(query)]


def _row(m: Any) -> TriggerRow:
    return TriggerRow(
        package=m["package"],
        name=m["name"],
        source=m["source"],
        package_version=m["package_version"],
        poll_interval_s=float(m["poll_interval_s"]),
        timeout_s=float(m["timeout_s"]),
        workflows=tuple(json.loads(m["workflows"])),
        paused=bool(m["paused"]),
        last_poll_at=m["last_poll_at"],
        polled_by=m["polled_by"],
        last_error=m["last_error"],
        last_error_at=m["last_error_at"],
        last_fire_at=m["last_fire_at"],
        last_executions=tuple(json.loads(m["last_executions"] or "[]")),
        updated_at=float(m["updated_at"]),
    )


def list_triggers(conn: Connection) -> list[TriggerRow]:
    """The tenant's live triggers, by package and name."""
    return [_row(r._mapping) for r in conn.execute(select(_t).order_by(_t.c.package, _t.c.name))]


def claim_poll(conn: Connection, *, package: str, name: str, owner: str, now: float) -> bool:
    """Claim this interval's poll of one trigger; False when it is paused or polled less than an interval ago."""
    due = or_(_t.c.last_poll_at.is_(None), _t.c.last_poll_at <= now - _t.c.poll_interval_s + _SLACK_S)
    idle = or_(_t.c.polling_until.is_(None), _t.c.polling_until <= now)
    claimed = (
        update(_t)
        .where(_t.c.package == package, _t.c.name == name, _t.c.paused == 0, due, idle)
        .values(last_poll_at=now, polled_by=owner, polling_until=now + _t.c.timeout_s)
    )
    return int(conn.execute(claimed).rowcount) == 1


def end_poll(conn: Connection, *, package: str, name: str, owner: str, succeeded: bool) -> None:
    """The poll ``owner`` claimed has ended: the next interval's may be claimed (by any host). A poll that
    ``succeeded`` clears the failure an earlier one stored (``record_error``)."""
    where = (_t.c.package == package, _t.c.name == name, _t.c.polled_by == owner)
    cleared = {"last_error": None, "last_error_at": None} if succeeded else {}
    conn.execute(update(_t).where(*where).values(polling_until=None, **cleared))


def record_error(conn: Connection, *, package: str, name: str, error: str, now: float) -> None:
    """Store why the latest poll failed (the next poll tries again)."""
    where = (_t.c.package == package, _t.c.name == name)
    conn.execute(update(_t).where(*where).values(last_error=error[:4000], last_error_at=now))


def record_fire(
    conn: Connection,
    *,
    package: str,
    name: str,
    now: float,
    started: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
) -> None:
    """Store a firing and the executions it starts (each row with its tasks), in the caller's transaction."""
    for execution, tasks in started:
        conn.execute(insert(executions).values(**execution))
        if tasks:
            conn.execute(insert(task_executions), [dict(t) for t in tasks])
    ids = [str(execution["id"]) for execution, _tasks in started]
    where = (_t.c.package == package, _t.c.name == name)
    conn.execute(update(_t).where(*where).values(last_fire_at=now, last_executions=json.dumps(ids)))


def set_paused(conn: Connection, *, package: str, name: str, paused: bool, now: float) -> bool:
    """Pause or resume one trigger; True when it changed. The pause is remembered by name (``_pauses``), so it
    outlives a deactivation of the package."""
    where = (_t.c.package == package, _t.c.name == name, _t.c.paused == int(not paused))
    source = conn.execute(select(_t.c.source).where(*where)).scalar()
    if source is None:
        return False
    record_pause(conn, kind="trigger", scope=package, name=name, source=str(source), paused=paused, now=now)
    return int(conn.execute(update(_t).where(*where).values(paused=int(paused), updated_at=now)).rowcount) == 1
