"""What a service reports about a tenant's database at a glance: its schema version, executions waiting."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from ._migrations import LATEST_VERSION, current_version
from ._schema import executions

__all__ = ["queued_executions", "schema_behind"]


def queued_executions(conn: Connection, *, tenant: str) -> int:
    """Executions stored and not started by any host yet (``queued``, as ``executions list`` shows them)."""
    query = (
        select(func.count())
        .select_from(executions)
        .where(executions.c.tenant == tenant, executions.c.status == "running", executions.c.started_at.is_(None))
    )
    return int(conn.execute(query).scalar_one())


def schema_behind(conn: Connection) -> str | None:
    """None when the schema is at this host's version; else what is wrong with it."""
    version = current_version(conn)
    if version == LATEST_VERSION:
        return None
    return f"the schema is at version {version}, this cloacina-host needs {LATEST_VERSION}"
