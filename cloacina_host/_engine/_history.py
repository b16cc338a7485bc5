"""The stored history of executions, as the CLI reads it: list them, find one by id or prefix."""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import NotFoundError, UsageError
from .._storage import ExecutionRecord
from .._storage import _queries as q
from .._storage._tenants import open_tenant_database

__all__ = ["ExecutionList", "ExecutionRecord", "find_execution", "list_executions"]


@dataclass(frozen=True)
class ExecutionList:
    """Executions found, newest first, and where they were looked for (the database, password masked)."""

    records: list[ExecutionRecord]
    where: str


def list_executions(
    database_url: str | None,
    *,
    home: str | None,
    tenant: str,
    workflow: str | None = None,
    status: str | None = None,
    limit: int = 20,
) -> ExecutionList:
    """``tenant``'s executions, newest first: of ``workflow`` only, in ``status`` only, at most ``limit``."""
    db = open_tenant_database(database_url, home=home, tenant=tenant)
    try:
        with db.read("listing executions") as conn:
            records = q.list_executions(conn, tenant=tenant, workflow=workflow, status=status, limit=limit)
    finally:
        db.dispose()
    return ExecutionList(records, db.display_url)


def find_execution(database_url: str | None, *, home: str | None, tenant: str, execution_id: str) -> ExecutionRecord:
    """The execution ``execution_id`` (or the one whose id starts so) with its tasks and attempts.

    ``NotFoundError`` when none matches; ``UsageError`` when a prefix matches several.
    """
    db = open_tenant_database(database_url, home=home, tenant=tenant)
    try:
        with db.read("reading an execution") as conn:
            ids = q.find_execution_ids(conn, tenant=tenant, prefix=execution_id)
            if execution_id in ids:
                ids = [execution_id]
            if not ids:
                raise NotFoundError(
                    f"No execution {execution_id!r} in tenant {tenant!r} of {db.display_url}. "
                    "List them with `cloacina-ctl executions list`."
                )
            if len(ids) > 1:
                raise UsageError(
                    f"Execution id prefix {execution_id!r} matches several executions ({', '.join(ids)}); "
                    "give more characters."
                )
            record = q.get_execution(conn, ids[0])
    finally:
        db.dispose()
    assert record is not None
    return record
