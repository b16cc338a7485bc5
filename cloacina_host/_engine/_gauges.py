"""A tenant's state as a service reports it: whether its database is ready, how many executions wait."""

from __future__ import annotations

from .._errors import StorageError
from .._storage import Database
from .._storage import _gauges as g

__all__ = ["database_unready", "queue_depth"]


def database_unready(db: Database) -> str | None:
    """None when ``db`` answers and its schema is current; else why not (for a readiness probe)."""
    try:
        with db.read("checking readiness") as conn:
            return g.schema_behind(conn)
    except StorageError as exc:
        return str(exc)


def queue_depth(db: Database, *, tenant: str) -> int:
    """Executions of ``tenant`` stored and waiting for a host to start them."""
    with db.read("counting queued executions") as conn:
        return g.queued_executions(conn, tenant=tenant)
