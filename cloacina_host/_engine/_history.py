"""The stored history of executions, as the CLI reads it: list them, find one by id or prefix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from .._errors import NotFoundError, UsageError
from .._storage import Database, ExecutionRecord
from .._storage import _queries as q
from .._storage._tenants import open_tenant_database

__all__ = ["ExecutionList", "ExecutionRecord", "find_execution", "list_executions"]


@dataclass(frozen=True)
class ExecutionList:
    """Executions found, newest first, and where they were looked for (the database, password masked)."""

    records: list[ExecutionRecord]
    where: str


@contextlib.contextmanager
def _reading(database_url: str | None, home: str | None, tenant: str, database: Database | None) -> Iterator[Database]:
    """``database`` (its owner closes it), else the tenant's database opened read-only for the block."""
    if database is not None:
        yield database
        return
    db = open_tenant_database(database_url, home=home, tenant=tenant, read_only=True)
    try:
        yield db
    finally:
        db.dispose()


def list_executions(
    database_url: str | None,
    *,
    home: str | None,
    tenant: str,
    workflow: str | None = None,
    status: str | None = None,
    limit: int = 20,
    database: Database | None = None,
) -> ExecutionList:
    """``tenant``'s executions, newest first: of ``workflow`` only, in ``status`` only, at most ``limit``.

    Read-only: ``database`` if given (a command's), else the tenant's opened read-only; a database
    that does not exist yet has no executions.
    """
    with _reading(database_url, home, tenant, database) as db, db.read("listing executions") as conn:
        records = q.list_executions(conn, tenant=tenant, workflow=workflow, status=status, limit=limit)
    return ExecutionList(records, db.display_url)


def find_execution(
    database_url: str | None,
    *,
    home: str | None,
    tenant: str,
    execution_id: str,
    database: Database | None = None,
) -> ExecutionRecord:
    """The execution ``execution_id`` (or the one whose id starts so) with its tasks and attempts.

    ``NotFoundError`` when none matches; ``UsageError`` when a prefix matches several.
    """
    with _reading(database_url, home, tenant, database) as db, db.read("reading an execution") as conn:
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
    assert record is not None
    return record
