"""Every query the host runs, in one place: the engine's writes (by phase) and the reads.

Writes go through the group-commit writer (``_writer``), which runs a batch of them in one
transaction, grouped by ``Write`` and in ``Write`` order. That order is the order of a task's life,
so two writes to one row in a batch land right; the engine never puts a row's later write (a retry's
start) in a batch before its earlier one (the failure) has been committed.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Executable, Row, and_, bindparam, func, insert, or_, select, update

from ._records import AttemptRecord, ExecutionRecord, TaskRecord
from ._schema import executions, task_attempts, task_executions

TERMINAL_TASK = ("completed", "failed", "skipped")
INTERRUPTED_ERROR = "interrupted: the host process stopped while this attempt ran; it runs again"


class Write(enum.IntEnum):
    """The engine's writes, in the order a batch applies them."""

    INSERT_EXECUTION = 1
    INSERT_TASK = 2
    INSERT_ATTEMPT = 3
    TASK_STARTED = 4
    FINISH_ATTEMPT = 5
    TASK_STATE = 6
    FINISH_EXECUTION = 7
    RENEW_LEASES = 8


_te = task_executions
_ta = task_attempts
_ex = executions

WRITES: dict[Write, Executable] = {
    Write.INSERT_EXECUTION: insert(_ex),
    Write.INSERT_TASK: insert(_te),
    Write.INSERT_ATTEMPT: insert(_ta),
    Write.TASK_STARTED: update(_te)
    .where(_te.c.execution_id == bindparam("b_execution_id"), _te.c.task_id == bindparam("b_task_id"))
    .values(
        status="running",
        attempt=bindparam("attempt"),
        ready_at=None,
        started_at=func.coalesce(_te.c.started_at, bindparam("started_at")),
    ),
    Write.FINISH_ATTEMPT: update(_ta)
    .where(
        _ta.c.execution_id == bindparam("b_execution_id"),
        _ta.c.task_id == bindparam("b_task_id"),
        _ta.c.attempt == bindparam("b_attempt"),
    )
    .values(
        status=bindparam("status"),
        finished_at=bindparam("finished_at"),
        error=bindparam("error"),
        traceback=bindparam("traceback"),
    ),
    Write.TASK_STATE: update(_te)
    .where(_te.c.execution_id == bindparam("b_execution_id"), _te.c.task_id == bindparam("b_task_id"))
    .values(
        status=bindparam("status"),
        ready_at=bindparam("ready_at"),
        finished_at=bindparam("finished_at"),
        duration_s=bindparam("duration_s"),
        error=bindparam("error"),
        context_out=bindparam("context_out"),
    ),
    Write.FINISH_EXECUTION: update(_ex)
    .where(_ex.c.id == bindparam("b_id"))
    .values(
        status=bindparam("status"),
        finished_at=bindparam("finished_at"),
        context_out=bindparam("context_out"),
        error=bindparam("error"),
        lease_owner=None,
        lease_expires_at=None,
    ),
    Write.RENEW_LEASES: update(_ex)
    .where(_ex.c.lease_owner == bindparam("b_owner"), _ex.c.status == "running")
    .values(lease_expires_at=bindparam("lease_expires_at")),
}


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# -- reads ----------------------------------------------------------------------------------------


def _execution(row: Row[Any], tasks: tuple[TaskRecord, ...] = ()) -> ExecutionRecord:
    m = row._mapping
    return ExecutionRecord(
        id=m["id"],
        tenant=m["tenant"],
        namespace=m["namespace"],
        package=m["package"],
        workflow=m["workflow"],
        package_version=m["package_version"],
        status=m["status"],
        context_in=_loads(m["context_in"]),
        context_out=_loads(m["context_out"]),
        error=m["error"],
        created_at=m["created_at"],
        finished_at=m["finished_at"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        tasks=tasks,
    )


def list_executions(
    conn: Connection,
    *,
    tenant: str,
    workflow: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[ExecutionRecord]:
    """The tenant's executions, newest first. ``workflow`` matches a name, ``package::name`` or a namespace."""
    query = select(_ex).where(_ex.c.tenant == tenant)
    if workflow:
        query = query.where(
            or_(_ex.c.workflow == workflow, _ex.c.namespace == workflow, _ex.c.namespace == f"{tenant}::{workflow}")
        )
    if status:
        query = query.where(_ex.c.status == status)
    query = query.order_by(_ex.c.created_at.desc(), _ex.c.id).limit(limit)
    return [_execution(row) for row in conn.execute(query)]


def find_execution_ids(conn: Connection, *, tenant: str, prefix: str, limit: int = 5) -> list[str]:
    """Ids of the tenant's executions starting with ``prefix`` (an id given in full matches itself)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(_ex.c.id)
        .where(_ex.c.tenant == tenant, _ex.c.id.like(f"{escaped}%", escape="\\"))
        .order_by(_ex.c.id)
        .limit(limit)
    )
    return [str(r[0]) for r in conn.execute(query)]


def get_execution(conn: Connection, execution_id: str) -> ExecutionRecord | None:
    """One execution with its tasks (in workflow order) and each task's attempts."""
    row = conn.execute(select(_ex).where(_ex.c.id == execution_id)).first()
    if row is None:
        return None
    attempts: dict[str, list[AttemptRecord]] = {}
    for a in conn.execute(select(_ta).where(_ta.c.execution_id == execution_id).order_by(_ta.c.attempt)):
        m = a._mapping
        attempts.setdefault(m["task_id"], []).append(
            AttemptRecord(
                attempt=m["attempt"],
                status=m["status"],
                started_at=m["started_at"],
                finished_at=m["finished_at"],
                error=m["error"],
                traceback=m["traceback"],
                worker=m["worker"],
            )
        )
    tasks = []
    for t in conn.execute(select(_te).where(_te.c.execution_id == execution_id).order_by(_te.c.position)):
        m = t._mapping
        tasks.append(
            TaskRecord(
                task_id=m["task_id"],
                position=m["position"],
                status=m["status"],
                attempt=m["attempt"],
                ready_at=m["ready_at"],
                started_at=m["started_at"],
                finished_at=m["finished_at"],
                duration_s=m["duration_s"],
                error=m["error"],
                context_out=_loads(m["context_out"]),
                attempts=tuple(attempts.get(m["task_id"], ())),
            )
        )
    return _execution(row, tuple(tasks))


def unfinished_executions(conn: Connection, *, tenant: str) -> list[tuple[str, str, str | None, float | None]]:
    """``(id, namespace, lease_owner, lease_expires_at)`` of the tenant's running executions, oldest first."""
    query = (
        select(_ex.c.id, _ex.c.namespace, _ex.c.lease_owner, _ex.c.lease_expires_at)
        .where(_ex.c.tenant == tenant, _ex.c.status == "running")
        .order_by(_ex.c.created_at)
    )
    return [(str(r[0]), str(r[1]), r[2], r[3]) for r in conn.execute(query)]


# -- recovery -------------------------------------------------------------------------------------


def claim_execution(
    conn: Connection,
    *,
    execution_id: str,
    previous_owner: str | None,
    owner: str,
    lease_expires_at: float,
    now: float,
) -> bool:
    """Take over a running execution whose owner is ``previous_owner`` (compare-and-swap).

    Attempts left ``running`` by the previous owner become ``interrupted``, and their tasks ``pending``,
    so that they run again. Returns False when another host got there first.
    """
    owner_matches = _ex.c.lease_owner.is_(None) if previous_owner is None else _ex.c.lease_owner == previous_owner
    claimed = conn.execute(
        update(_ex)
        .where(_ex.c.id == execution_id, _ex.c.status == "running", owner_matches)
        .values(lease_owner=owner, lease_expires_at=lease_expires_at)
    ).rowcount
    if claimed != 1:
        return False
    conn.execute(
        update(_ta)
        .where(_ta.c.execution_id == execution_id, _ta.c.status == "running")
        .values(status="interrupted", finished_at=now, error=INTERRUPTED_ERROR)
    )
    conn.execute(
        update(_te)
        .where(_te.c.execution_id == execution_id, _te.c.status == "running")
        .values(status="pending", lease_owner=None, lease_expires_at=None)
    )
    return True


def release_leases(conn: Connection, *, owner: str) -> int:
    """Give up the leases ``owner`` holds, so another host can resume those executions at once."""
    return int(
        conn.execute(
            update(_ex)
            .where(_ex.c.lease_owner == owner, _ex.c.status == "running")
            .values(lease_owner=None, lease_expires_at=None)
        ).rowcount
    )


def count_tasks_by_status(conn: Connection, execution_ids: Sequence[str]) -> dict[str, int]:
    """How many task rows of these executions are in each status (benchmarks and tests)."""
    query = (
        select(_te.c.status, func.count())
        .where(and_(_te.c.execution_id.in_(list(execution_ids))))
        .group_by(_te.c.status)
    )
    return {str(r[0]): int(r[1]) for r in conn.execute(query)}
