"""The storage steps of resuming executions whose host is gone (``DefaultRunner.recover``), run off the loop."""

from __future__ import annotations

import time

from .._discovery import CatalogEntry, WorkflowCatalog
from .._errors import HostError
from .._storage import Database, ExecutionRecord
from .._storage import _queries as q
from ._resolver import resolve_version

__all__ = ["claim_to_resume", "recorded_version", "release", "unfinished"]


def unfinished(db: Database, tenant: str) -> list[tuple[str, str, str | None, float | None]]:
    """``tenant``'s unfinished executions: (id, workflow, lease owner, lease expiry)."""
    with db.read("looking for unfinished executions") as conn:
        return q.unfinished_executions(conn, tenant=tenant)


def claim_to_resume(
    db: Database, execution_id: str, previous: str | None, owner: str, lease_s: float
) -> ExecutionRecord | None:
    """Take ``execution_id`` over from ``previous`` for ``owner``; its record, or None if another host won."""
    with db.write("resuming an execution") as conn:
        ok = q.claim_execution(
            conn,
            execution_id=execution_id,
            previous_owner=previous,
            owner=owner,
            lease_expires_at=time.time() + lease_s,
            now=time.time(),
        )
        return q.get_execution(conn, execution_id) if ok else None


def recorded_version(catalog: WorkflowCatalog, db: Database, execution_id: str, namespace: str) -> CatalogEntry | None:
    """The registered version an execution recorded, when no active workflow answers to its name."""
    with db.read("reading an execution") as conn:
        record = q.get_execution(conn, execution_id)
    if record is None or record.package_version is None:
        return None
    _tenant, package, workflow = namespace.split("::", 2)
    try:
        return resolve_version(catalog, package, workflow, record.package_version)
    except HostError:
        return None


def release(db: Database, execution_id: str, owner: str) -> None:
    """Give up ``owner``'s lease of ``execution_id`` (it cannot be resumed here)."""
    with db.write("releasing an execution") as conn:
        q.release_execution(conn, execution_id=execution_id, owner=owner)
