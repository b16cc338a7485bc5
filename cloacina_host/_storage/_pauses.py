"""What a user paused (``schedules pause``, ``triggers pause``), kept apart from the live rows.

A package's schedules and triggers are live rows only while a version is active: deactivating it
deletes them, activating a version (or registering a newer one) writes them again. The pause is the
user's decision, not the version's, so it lives here, by kind, scope and name: a schedule or trigger
written again under a name that is paused comes back paused, until ``resume``. Removing a package's
last version forgets its pauses.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Connection, delete, insert, select

from ._schema import pauses

__all__ = ["Kind", "forget_source", "paused_names", "record_pause"]

Kind = Literal["schedule", "trigger"]
_p = pauses


def record_pause(conn: Connection, *, kind: Kind, scope: str, name: str, source: str, paused: bool, now: float) -> None:
    """Remember (``paused``) or forget (resumed) the pause of one schedule or trigger, in the caller's transaction."""
    where = (_p.c.kind == kind, _p.c.scope == scope, _p.c.name == name)
    conn.execute(delete(_p).where(*where))
    if paused:
        conn.execute(insert(_p).values(kind=kind, scope=scope, name=name, source=source, paused_at=now))


def paused_names(conn: Connection, *, kind: Kind, scopes: list[str]) -> set[tuple[str, str]]:
    """The ``(scope, name)`` of the paused ones of ``kind`` among ``scopes``."""
    if not scopes:
        return set()
    query = select(_p.c.scope, _p.c.name).where(_p.c.kind == kind, _p.c.scope.in_(sorted(set(scopes))))
    return {(str(r[0]), str(r[1])) for r in conn.execute(query)}


def forget_source(conn: Connection, *, source: str) -> int:
    """Forget every pause of ``source`` (its package's last version was removed); return how many."""
    return int(conn.execute(delete(_p).where(_p.c.source == source)).rowcount)
