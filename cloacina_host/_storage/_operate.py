"""The queries of operating stored executions: cancel, retry, rerun, and the events that record them.

What a cancel or a retry *means* (which tasks end ``cancelled``, which run again) is the kit's rule
(``cloacina_workflow._machine``); the engine passes the decided task ids here, and these functions
only store them, each in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ._queries import TERMINAL_TASK, dumps
from ._schema import execution_events, executions, task_attempts, task_executions

__all__ = [
    "ExecutionState",
    "add_event",
    "cancel_requests",
    "end_cancelled",
    "execution_state",
    "mark_started",
    "request_cancel",
    "reset_for_retry",
]

_ex = executions
_te = task_executions
_ta = task_attempts
_ev = execution_events


@dataclass(frozen=True)
class ExecutionState:
    """An execution's row as a cancel or a retry needs it, read under the transaction's lock."""

    id: str
    tenant: str
    status: str
    lease_owner: str | None
    lease_expires_at: float | None
    context_in: str
    tasks: dict[str, str]  # task id -> status, in workflow order
    outputs: dict[str, str | None]  # task id -> its output JSON (completed tasks)


def execution_state(conn: Connection, execution_id: str, *, lock: bool = True) -> ExecutionState | None:
    """The execution's status, lease and tasks; its row locked for the transaction (PostgreSQL) when ``lock``."""
    query = select(_ex.c.id, _ex.c.tenant, _ex.c.status, _ex.c.lease_owner, _ex.c.lease_expires_at, _ex.c.context_in)
    query = query.where(_ex.c.id == execution_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return None
    tasks: dict[str, str] = {}
    outputs: dict[str, str | None] = {}
    rows = conn.execute(
        select(_te.c.task_id, _te.c.status, _te.c.context_out)
        .where(_te.c.execution_id == execution_id)
        .order_by(_te.c.position)
    )
    for t in rows:
        tasks[str(t[0])] = str(t[1])
        if t[1] == "completed":
            outputs[str(t[0])] = t[2]
    return ExecutionState(str(row[0]), str(row[1]), str(row[2]), row[3], row[4], str(row[5]), tasks, outputs)


def add_event(
    conn: Connection, *, execution_id: str, at: float, kind: str, actor: str, detail: Mapping[str, Any]
) -> int:
    """Record that ``actor`` asked ``kind`` (cancel, retry, rerun) of an execution; return its sequence number."""
    seq = int(
        conn.execute(
            select(func.coalesce(func.max(_ev.c.seq), 0) + 1).where(_ev.c.execution_id == execution_id)
        ).scalar_one()
    )
    conn.execute(
        insert(_ev).values(execution_id=execution_id, seq=seq, at=at, kind=kind, actor=actor, detail=dumps(detail))
    )
    return seq


def request_cancel(conn: Connection, *, execution_id: str, at: float) -> bool:
    """Store the request to cancel a running execution (the first one's time is kept); False if it has ended."""
    done = conn.execute(
        update(_ex)
        .where(_ex.c.id == execution_id, _ex.c.status == "running")
        .values(cancel_requested_at=func.coalesce(_ex.c.cancel_requested_at, at))
    ).rowcount
    return bool(done)


def cancel_requests(conn: Connection, execution_ids: Iterable[str]) -> dict[str, str | None]:
    """Of these executions, those with a cancel requested (still running): ``{id: who asked}``."""
    ids = sorted(set(execution_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(_ex.c.id).where(_ex.c.id.in_(ids), _ex.c.status == "running", _ex.c.cancel_requested_at.is_not(None))
    ).all()
    found: dict[str, str | None] = {str(r[0]): None for r in rows}
    if found:
        for eid, actor in conn.execute(
            select(_ev.c.execution_id, _ev.c.actor)
            .where(_ev.c.execution_id.in_(list(found)), _ev.c.kind == "cancel")
            .order_by(_ev.c.seq)
        ):
            found[str(eid)] = str(actor)
    return found


def end_cancelled(
    conn: Connection,
    *,
    execution_id: str,
    tasks: Sequence[str],
    reason: str,
    status: str,
    error: str | None,
    context_out: str,
    now: float,
) -> bool:
    """End a running execution as a cancel decided: ``tasks`` (those not ended) ``cancelled`` with ``reason``,
    their running attempts too, and the execution ``status`` with its final context. False if it had ended."""
    done = conn.execute(
        update(_ex)
        .where(_ex.c.id == execution_id, _ex.c.status == "running")
        .values(
            status=status,
            finished_at=now,
            error=error,
            context_out=context_out,
            lease_owner=None,
            lease_expires_at=None,
            cancel_requested_at=func.coalesce(_ex.c.cancel_requested_at, now),
        )
    ).rowcount
    if not done:
        return False
    if tasks:
        conn.execute(
            update(_ta)
            .where(_ta.c.execution_id == execution_id, _ta.c.task_id.in_(list(tasks)), _ta.c.status == "running")
            .values(status="cancelled", finished_at=now, error=reason)
        )
        conn.execute(
            update(_te)
            .where(
                _te.c.execution_id == execution_id,
                _te.c.task_id.in_(list(tasks)),
                _te.c.status.not_in(TERMINAL_TASK),
            )
            .values(
                status="cancelled",
                ready_at=None,
                finished_at=now,
                duration_s=func.coalesce(now - _te.c.started_at, 0.0),
                error=reason,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
    return True


def reset_for_retry(
    conn: Connection,
    *,
    execution_id: str,
    tasks: Sequence[str],
    package_version: str | None,
    workflow_fingerprint: str | None,
    owner: str | None,
    lease_expires_at: float | None,
    now: float,
) -> bool:
    """Make a finished execution run ``tasks`` again: they become ``pending`` (attempts kept, numbers go on),
    the execution ``running`` on ``package_version``, held by ``owner`` (None: queued for a ``serve``).

    ``started_at`` becomes now (``None`` when queued): the retry policy counts the failures after it.
    False when the execution is running (or gone).
    """
    done = conn.execute(
        update(_ex)
        .where(_ex.c.id == execution_id, _ex.c.status != "running")
        .values(
            status="running",
            finished_at=None,
            error=None,
            context_out=None,
            cancel_requested_at=None,
            package_version=package_version,
            workflow_fingerprint=workflow_fingerprint,
            lease_owner=owner,
            lease_expires_at=lease_expires_at,
            started_at=None if owner is None else now,
        )
    ).rowcount
    if not done:
        return False
    if tasks:
        conn.execute(
            update(_te)
            .where(_te.c.execution_id == execution_id, _te.c.task_id.in_(list(tasks)))
            .values(
                status="pending",
                ready_at=None,
                started_at=None,
                finished_at=None,
                duration_s=None,
                error=None,
                context_out=None,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
    return True


def mark_started(conn: Connection, *, execution_ids: Sequence[str], now: float) -> None:
    """Record that a host started these executions (those still queued: ``started_at`` is None)."""
    if execution_ids:
        conn.execute(
            update(_ex).where(_ex.c.id.in_(list(execution_ids)), _ex.c.started_at.is_(None)).values(started_at=now)
        )
