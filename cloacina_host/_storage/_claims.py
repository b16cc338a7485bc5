"""The queries of distributed executions (PostgreSQL): claim, renew, complete, fail, release, notify.

A distributed execution is one whose row's ``lease_owner`` is ``DISTRIBUTED_OWNER``: no single host
drives it; ``cloacina-ctl worker`` processes claim its ready task rows. Every comparison of time
uses the database's clock (``now()``), so leases mean the same on every machine.

Locking, so that dependents become ready exactly once and an execution finishes exactly once:

- a claim locks candidate task rows with ``FOR UPDATE SKIP LOCKED`` and never waits;
- every transaction that ends an attempt (complete, fail) first locks the execution row, then
  changes the task row only if the claim still holds (compare-and-swap on owner and attempt), then
  the dependents. So the ends of one execution's tasks are serialised: the one that completes a
  task's last parent sees every other parent completed, and the last task to end sees the rest ended.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Float, and_, bindparam, cast, func, insert, or_, select, text, tuple_, update
from sqlalchemy.sql.elements import ColumnElement

from .._errors import StorageError
from ._database import Database
from ._queries import TERMINAL_TASK, dumps
from ._schema import executions, task_attempts, task_executions

#: ``executions.lease_owner`` of a distributed execution: the pool of workers, not one host
DISTRIBUTED_OWNER = "cloacina:distributed"
#: the ``LISTEN``/``NOTIFY`` channel on which workers hear that tasks became ready (payload: the tenant)
CHANNEL = "cloacina_tasks"

_ex = executions
_te = task_executions
_ta = task_attempts


def db_now() -> ColumnElement[float]:
    """The database's clock, in seconds since the epoch (the start of the current transaction)."""
    return cast(func.extract("epoch", func.now()), Float)


@dataclass(frozen=True)
class Claim:
    """A task row a worker holds: which attempt it runs, under which lease, of which execution."""

    execution_id: str
    task_id: str
    attempt: int
    tenant: str
    namespace: str
    package: str
    package_version: str | None
    context_in: str
    lease_expires_at: float
    #: the worker whose lease lapsed, when this claim took the task over from it
    reclaimed_from: str | None = None
    #: the dependencies' outputs, read with the claim when the claimer knew the dependencies
    parent_outputs: dict[str, dict[str, Any]] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.execution_id, self.task_id)


def notify(conn: Connection, tenant: str) -> None:
    """Wake the workers (delivered when the transaction commits)."""
    conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": tenant})


async def notifications(db: Database, on_listening: Callable[[], None]) -> AsyncIterator[str]:
    """The payloads (tenants) notified on ``CHANNEL``, heard on a connection of its own.

    ``on_listening`` is called once ``LISTEN`` holds. A lost or refused connection ends the
    iteration with ``StorageError`` (the driver's reason on one line); the caller reconnects.
    """
    import psycopg

    conninfo = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, connect_timeout=10)
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            on_listening()
            async for note in conn.notifies():
                yield note.payload
    except psycopg.Error as exc:
        raise StorageError(" ".join(str(exc).split())[:300]) from exc


@dataclass(frozen=True)
class TaskResult:
    """How a task of an execution ended: its status, error and output (JSON text), in workflow order."""

    task_id: str
    status: str
    error: str | None
    context_out: str | None


def task_results(conn: Connection, *, execution_id: str) -> list[TaskResult]:
    """Every task of ``execution_id`` with its status, error and output, in the workflow's order."""
    rows = conn.execute(
        select(_te.c.task_id, _te.c.status, _te.c.error, _te.c.context_out)
        .where(_te.c.execution_id == execution_id)
        .order_by(_te.c.position)
    ).all()
    return [TaskResult(r.task_id, r.status, r.error, r.context_out) for r in rows]


def insert_execution(conn: Connection, *, execution: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> None:
    """Store a new distributed execution; task rows whose ``status`` is ``ready`` become claimable now."""
    conn.execute(insert(_ex).values(**{**execution, "lease_owner": DISTRIBUTED_OWNER, "lease_expires_at": None}))
    rows = [{**t, "ready_at": None} for t in tasks]
    conn.execute(insert(_te), rows)
    ready = [t["task_id"] for t in tasks if t["status"] == "ready"]
    if ready:
        conn.execute(
            update(_te).where(_te.c.execution_id == execution["id"], _te.c.task_id.in_(ready)).values(ready_at=db_now())
        )
    notify(conn, str(execution["tenant"]))


def _claimable(tenant: str) -> ColumnElement[bool]:
    now = db_now()
    return and_(
        _ex.c.tenant == tenant,
        _ex.c.status == "running",
        _ex.c.lease_owner == DISTRIBUTED_OWNER,
        or_(
            and_(_te.c.status.in_(("ready", "retry_wait")), _te.c.ready_at <= now),
            and_(_te.c.status == "running", _te.c.lease_expires_at < now),
        ),
    )


#: ``(namespace, package_version, task_id)`` → the task's dependencies, or None when not known yet
DependencyLookup = Callable[[str, "str | None", str], "Sequence[str] | None"]


def claim_tasks(
    conn: Connection,
    *,
    tenant: str,
    owner: str,
    limit: int,
    lease_s: float,
    dependencies: DependencyLookup | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` tasks: ready ones, retries that are due, and running ones whose lease lapsed.

    Sets the lease and the next attempt number, records the attempt (``running``, by ``owner``), and
    marks the attempt of a lapsed lease ``interrupted``. Rows other workers are claiming are skipped.
    Where ``dependencies`` knows a task's dependencies, their outputs come with the claim.
    """
    candidates = (
        select(
            _te.c.execution_id,
            _te.c.task_id,
            _te.c.status.label("previous_status"),
            _te.c.lease_owner.label("previous_owner"),
        )
        .join(_ex, _ex.c.id == _te.c.execution_id)
        .where(_claimable(tenant))
        .order_by(func.coalesce(_te.c.ready_at, _te.c.lease_expires_at))
        .limit(limit)
        .with_for_update(of=_te, skip_locked=True)
        .cte("candidates")
    )
    claimed = conn.execute(
        update(_te)
        .where(_te.c.execution_id == candidates.c.execution_id, _te.c.task_id == candidates.c.task_id)
        .values(
            status="running",
            attempt=_te.c.attempt + 1,
            ready_at=None,
            started_at=func.coalesce(_te.c.started_at, db_now()),
            lease_owner=owner,
            lease_expires_at=db_now() + lease_s,
        )
        .returning(
            _te.c.execution_id,
            _te.c.task_id,
            _te.c.attempt,
            _te.c.lease_expires_at,
            candidates.c.previous_status,
            candidates.c.previous_owner,
        )
    ).all()
    if not claimed:
        return []
    lapsed = [r for r in claimed if r.previous_status == "running"]
    for r in lapsed:
        conn.execute(
            update(_ta)
            .where(
                _ta.c.execution_id == r.execution_id,
                _ta.c.task_id == r.task_id,
                _ta.c.attempt == r.attempt - 1,
                _ta.c.status == "running",
            )
            .values(
                status="interrupted",
                finished_at=db_now(),
                error=f"interrupted: the lease of worker {r.previous_owner} lapsed (it stopped renewing it: "
                "killed, hung or cut off from the database); the task runs again",
            )
        )
    conn.execute(
        insert(_ta).values(
            execution_id=bindparam("p_execution_id"),
            task_id=bindparam("p_task_id"),
            attempt=bindparam("p_attempt"),
            status="running",
            started_at=db_now(),
            worker=owner,
        ),
        [{"p_execution_id": r.execution_id, "p_task_id": r.task_id, "p_attempt": r.attempt} for r in claimed],
    )
    ids = sorted({r.execution_id for r in claimed})
    info = {
        row.id: row
        for row in conn.execute(
            select(
                _ex.c.id, _ex.c.tenant, _ex.c.namespace, _ex.c.package, _ex.c.package_version, _ex.c.context_in
            ).where(_ex.c.id.in_(ids))
        )
    }
    claims = [
        Claim(
            execution_id=r.execution_id,
            task_id=r.task_id,
            attempt=r.attempt,
            tenant=info[r.execution_id].tenant,
            namespace=info[r.execution_id].namespace,
            package=info[r.execution_id].package,
            package_version=info[r.execution_id].package_version,
            context_in=info[r.execution_id].context_in,
            lease_expires_at=r.lease_expires_at,
            reclaimed_from=r.previous_owner if r.previous_status == "running" else None,
        )
        for r in claimed
    ]
    if dependencies is None:
        return claims
    wanted: dict[int, list[str]] = {}
    for i, claim in enumerate(claims):
        deps = dependencies(claim.namespace, claim.package_version, claim.task_id)
        if deps is not None:
            wanted[i] = list(deps)
    pairs = sorted({(claims[i].execution_id, d) for i, deps in wanted.items() for d in deps})
    found: dict[tuple[str, str], dict[str, Any]] = {}
    if pairs:
        query = select(_te.c.execution_id, _te.c.task_id, _te.c.context_out).where(
            tuple_(_te.c.execution_id, _te.c.task_id).in_(pairs), _te.c.status == "completed"
        )
        found = {(str(r[0]), str(r[1])): json.loads(r[2]) if r[2] is not None else {} for r in conn.execute(query)}
    for i, deps in wanted.items():
        eid = claims[i].execution_id
        if all((eid, d) in found for d in deps):
            claims[i] = replace(claims[i], parent_outputs={d: found[(eid, d)] for d in deps})
    return claims


def outputs(conn: Connection, *, execution_id: str, task_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored output contexts of the completed tasks among ``task_ids``."""
    wanted = list(task_ids)
    if not wanted:
        return {}
    query = select(_te.c.task_id, _te.c.context_out).where(
        _te.c.execution_id == execution_id, _te.c.task_id.in_(wanted), _te.c.status == "completed"
    )
    return {str(r[0]): json.loads(r[1]) if r[1] is not None else {} for r in conn.execute(query)}


def renew_leases(conn: Connection, *, owner: str, lease_s: float) -> set[tuple[str, str, int]]:
    """Extend every lease ``owner`` holds; return ``(execution_id, task_id, attempt)`` of the ones it still holds."""
    rows = conn.execute(
        update(_te)
        .where(_te.c.lease_owner == owner, _te.c.status == "running")
        .values(lease_expires_at=db_now() + lease_s)
        .returning(_te.c.execution_id, _te.c.task_id, _te.c.attempt)
    )
    return {(str(r[0]), str(r[1]), int(r[2])) for r in rows}


def lock_execution(conn: Connection, execution_id: str) -> tuple[str, str, str] | None:
    """Lock the execution row (serialising the ends of its tasks); ``(status, tenant, context_in)``."""
    row = conn.execute(
        select(_ex.c.status, _ex.c.tenant, _ex.c.context_in).where(_ex.c.id == execution_id).with_for_update()
    ).first()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def _held(claim: Claim, owner: str) -> ColumnElement[bool]:
    return and_(
        _te.c.execution_id == claim.execution_id,
        _te.c.task_id == claim.task_id,
        _te.c.status == "running",
        _te.c.lease_owner == owner,
        _te.c.attempt == claim.attempt,
    )


def end_task(
    conn: Connection,
    *,
    claim: Claim,
    owner: str,
    status: str,
    output: Mapping[str, Any] | None = None,
    error: str | None = None,
    traceback: str | None = None,
    retry_delay_s: float | None = None,
) -> bool:
    """End the attempt ``claim`` holds: ``completed`` (with ``output``), ``failed``, or ``retry_wait``.

    Compare-and-swap: False (and nothing written) when the claim no longer holds, because the lease
    lapsed and another worker took the task over. Call with the execution row locked.
    """
    terminal = status != "retry_wait"
    finished = db_now() if terminal else None
    values: dict[str, Any] = {
        "status": status,
        "lease_owner": None,
        "lease_expires_at": None,
        "error": error,
        "context_out": dumps(output) if output is not None else None,
        "ready_at": db_now() + retry_delay_s if retry_delay_s is not None else None,
        "finished_at": finished,
        "duration_s": db_now() - _te.c.started_at if terminal else None,
    }
    if conn.execute(update(_te).where(_held(claim, owner)).values(**values)).rowcount != 1:
        return False
    conn.execute(
        update(_ta)
        .where(
            _ta.c.execution_id == claim.execution_id,
            _ta.c.task_id == claim.task_id,
            _ta.c.attempt == claim.attempt,
        )
        .values(
            status="completed" if status == "completed" else "failed",
            finished_at=db_now(),
            error=error,
            traceback=traceback,
        )
    )
    return True


def failed_attempts(conn: Connection, *, execution_id: str, task_id: str) -> int:
    """How many attempts of the task failed (what the retry policy counts; interruptions are not failures)."""
    query = select(func.count()).where(
        _ta.c.execution_id == execution_id, _ta.c.task_id == task_id, _ta.c.status == "failed"
    )
    return int(conn.execute(query).scalar_one())


def task_statuses(conn: Connection, *, execution_id: str, task_ids: Iterable[str] | None = None) -> dict[str, str]:
    query = select(_te.c.task_id, _te.c.status).where(_te.c.execution_id == execution_id)
    if task_ids is not None:
        query = query.where(_te.c.task_id.in_(list(task_ids)))
    return {str(r[0]): str(r[1]) for r in conn.execute(query)}


def make_ready(conn: Connection, *, execution_id: str, task_ids: Sequence[str]) -> None:
    """Pending tasks whose last dependency just completed become claimable now."""
    if task_ids:
        conn.execute(
            update(_te)
            .where(_te.c.execution_id == execution_id, _te.c.task_id.in_(list(task_ids)), _te.c.status == "pending")
            .values(status="ready", ready_at=db_now())
        )


def skip_tasks(conn: Connection, *, execution_id: str, task_ids: Sequence[str], reason: str) -> list[str]:
    """Mark the unfinished tasks among ``task_ids`` skipped; return the ones that were."""
    if not task_ids:
        return []
    rows = conn.execute(
        update(_te)
        .where(
            _te.c.execution_id == execution_id,
            _te.c.task_id.in_(list(task_ids)),
            _te.c.status.not_in(TERMINAL_TASK),
        )
        .values(
            status="skipped",
            ready_at=None,
            finished_at=db_now(),
            duration_s=0.0,
            error=reason,
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(_te.c.task_id)
    )
    return [str(r[0]) for r in rows]


def unfinished_count(conn: Connection, *, execution_id: str) -> int:
    query = select(func.count()).where(_te.c.execution_id == execution_id, _te.c.status.not_in(TERMINAL_TASK))
    return int(conn.execute(query).scalar_one())


def finish_execution(
    conn: Connection, *, execution_id: str, status: str, context_out: Mapping[str, Any], error: str | None
) -> float:
    """Record the end of a distributed execution; return its ``finished_at`` (database clock)."""
    row = conn.execute(
        update(_ex)
        .where(_ex.c.id == execution_id, _ex.c.status == "running")
        .values(status=status, finished_at=db_now(), context_out=dumps(context_out), error=error)
        .returning(_ex.c.finished_at)
    ).first()
    return float(row[0]) if row is not None else 0.0


def release_tasks(conn: Connection, *, owner: str, claims: Sequence[Claim], reason: str) -> list[Claim]:
    """Give the tasks back at once (ready again, lease cleared; the attempt ``interrupted``); return those released."""
    released: list[Claim] = []
    for claim in claims:
        done = conn.execute(
            update(_te)
            .where(_held(claim, owner))
            .values(status="ready", ready_at=db_now(), lease_owner=None, lease_expires_at=None)
        ).rowcount
        if done != 1:
            continue
        conn.execute(
            update(_ta)
            .where(
                _ta.c.execution_id == claim.execution_id,
                _ta.c.task_id == claim.task_id,
                _ta.c.attempt == claim.attempt,
            )
            .values(status="interrupted", finished_at=db_now(), error=reason)
        )
        released.append(claim)
    for tenant in sorted({c.tenant for c in released}):
        notify(conn, tenant)
    return released


def seconds_until_due(conn: Connection, *, tenant: str) -> float | None:
    """Seconds until the next retry falls due or a lease lapses in ``tenant`` (None: nothing pending)."""
    due = func.min(func.coalesce(_te.c.ready_at, _te.c.lease_expires_at))  # ready_at is NULL on running rows
    query = (
        select(due - db_now())
        .select_from(_te.join(_ex, _ex.c.id == _te.c.execution_id))
        .where(
            _ex.c.tenant == tenant,
            _ex.c.status == "running",
            _ex.c.lease_owner == DISTRIBUTED_OWNER,
            _te.c.status.in_(("ready", "retry_wait", "running")),
        )
    )
    value = conn.execute(query).scalar()
    return None if value is None else max(0.0, float(value))


def count_attempts_by_worker(conn: Connection, execution_ids: Sequence[str]) -> dict[tuple[str, str], int]:
    """``(worker, status) -> attempts`` of these executions (tests and benchmarks)."""
    query = (
        select(_ta.c.worker, _ta.c.status, func.count())
        .where(_ta.c.execution_id.in_(list(execution_ids)))
        .group_by(_ta.c.worker, _ta.c.status)
    )
    return {(str(r[0]), str(r[1])): int(r[2]) for r in conn.execute(query)}
