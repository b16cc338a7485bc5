"""The queries of distributed executions (PostgreSQL): store, claim, renew, release; their ends are in ``_ends``.

A distributed execution is one whose row's ``lease_owner`` is ``DISTRIBUTED_OWNER``: no single host
drives it; ``cloacina-ctl worker`` processes claim its ready task rows. Every comparison of time
uses the database's clock (``now()``), so leases mean the same on every machine.

Locking (``_ends`` says how the transactions that end attempts lock):

- a claim locks candidate task rows with ``FOR UPDATE SKIP LOCKED`` and never waits;
- a lease renewal skips the rows locked at that moment (being ended) and never waits either.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Float,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from ._channel import CHANNEL, notify
from ._schema import executions, task_attempts, task_executions

#: ``executions.lease_owner`` of a distributed execution: the pool of workers, not one host
DISTRIBUTED_OWNER = "cloacina:distributed"

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


#: the statuses of a task that runs once its ``ready_at`` has come
_WAITING = ("ready", "retry_wait", "deferred")


def _claimable(tenant: str | BindParameter[str]) -> ColumnElement[bool]:
    now = db_now()
    return and_(
        _ex.c.tenant == tenant,
        _ex.c.status == "running",
        _ex.c.lease_owner == DISTRIBUTED_OWNER,
        or_(
            and_(_te.c.status.in_(_WAITING), _te.c.ready_at <= now),
            and_(_te.c.status == "running", _te.c.lease_expires_at < now),
        ),
    )


#: ``(namespace, package_version, task_id)`` → the task's dependencies, or None when not known yet
DependencyLookup = Callable[[str, "str | None", str], "Sequence[str] | None"]
#: ``(namespace, package_version or "", task_id, dependency)``: one dependency of a task of a workflow the claimer knows
Edge = tuple[str, str, str, str]
_EDGE_COLUMNS = ("namespace", "version", "task_id", "dependency")


def _edges() -> Any:
    """``(namespace, version, task_id, dependency)`` rows from the array parameters ``p_e_*`` (see ``Edge``)."""
    names = _EDGE_COLUMNS
    return (
        func.unnest(*(bindparam(f"p_e_{n}", type_=ARRAY(String)) for n in names))
        .table_valued(*(column(n, String) for n in names))
        .render_derived(name="edges")
    )


@functools.cache
def _claim_statement() -> Select[Any]:
    """The claim, built once (parameters ``p_tenant``, ``p_owner``, ``p_limit``, ``p_lease_s``, ``p_notify``)."""
    candidates = (
        select(
            _te.c.execution_id,
            _te.c.task_id,
            _te.c.status.label("previous_status"),
            _te.c.lease_owner.label("previous_owner"),
            _ex.c.tenant,
            _ex.c.namespace,
            _ex.c.package,
            _ex.c.package_version,
            _ex.c.context_in,
            _ex.c.started_at.label("execution_started_at"),
        )
        .join(_ex, _ex.c.id == _te.c.execution_id)
        .where(_claimable(bindparam("p_tenant", type_=String)))
        # no ORDER BY: sorting every claimable row of every running execution made each claim cost
        # O(running executions); unsorted, the scan stops at ``limit`` rows, visiting executions in
        # about the order they were stored, so the oldest executions' tasks come first
        .limit(bindparam("p_limit", type_=Integer))
        .with_for_update(of=_te, skip_locked=True)
        .cte("candidates")
    )
    claimed = (
        update(_te)
        .where(_te.c.execution_id == candidates.c.execution_id, _te.c.task_id == candidates.c.task_id)
        .values(
            status="running",
            attempt=_te.c.attempt + 1,
            ready_at=None,
            started_at=func.coalesce(_te.c.started_at, db_now()),
            lease_owner=bindparam("p_owner", type_=String),
            lease_expires_at=db_now() + bindparam("p_lease_s", type_=Float),
        )
        .returning(
            _te.c.execution_id,
            _te.c.task_id,
            _te.c.attempt,
            _te.c.lease_expires_at,
            *(candidates.c[name] for name in ("previous_status", "previous_owner", "tenant", "namespace")),
            *(candidates.c[name] for name in ("package", "package_version", "context_in", "execution_started_at")),
        )
        .cte("claimed")
    )
    attempts = (
        insert(_ta)
        .from_select(
            ["execution_id", "task_id", "attempt", "status", "started_at", "worker"],
            select(
                claimed.c.execution_id,
                claimed.c.task_id,
                claimed.c.attempt,
                literal("running"),
                db_now(),
                bindparam("p_owner", type_=String),
            ),
        )
        .cte("attempts")
    )
    # NOTIFY in the same round trip, when asked (``p_notify``) and the claim took all it could: ready
    # tasks may be left for other workers (an uncorrelated subquery: evaluated once, with the first row)
    taken = select(func.count()).select_from(claimed).scalar_subquery()
    notified = (
        select(func.pg_notify(CHANNEL, bindparam("p_tenant", type_=String)).label("sent"))
        .where(bindparam("p_notify", type_=Boolean), taken >= bindparam("p_limit", type_=Integer))
        .cte("notified")
    )
    # the outputs of each claimed task's dependencies (where the claimer knows them: ``p_e_*``), as one JSON object
    edges = _edges()
    parent = _te.alias("parent")
    parents = (
        select(cast(func.json_object_agg(parent.c.task_id, cast(parent.c.context_out, JSON)), Text))
        .select_from(parent.join(edges, edges.c.dependency == parent.c.task_id))
        .where(
            parent.c.execution_id == claimed.c.execution_id,
            parent.c.status == "completed",
            edges.c.namespace == claimed.c.namespace,
            edges.c.version == func.coalesce(claimed.c.package_version, ""),
            edges.c.task_id == claimed.c.task_id,
        )
        .scalar_subquery()
    )
    return select(
        claimed,
        select(func.count()).select_from(notified).scalar_subquery().label("notified"),
        parents.label("parent_outputs"),
    ).add_cte(attempts)


def claim_tasks(
    conn: Connection,
    *,
    tenant: str,
    owner: str,
    limit: int,
    lease_s: float,
    dependencies: DependencyLookup | None = None,
    edges: Sequence[Edge] = (),
    notify_if_full: bool = False,
) -> list[Claim]:
    """Claim up to ``limit`` tasks: ready ones, retries that are due, and running ones whose lease lapsed.

    Sets the lease and the next attempt number and records the attempt (``running``, by ``owner``) in
    one statement, then marks the attempt of a lapsed lease ``interrupted``. Rows other workers are
    claiming are skipped. Where ``dependencies`` knows a task's dependencies (and ``edges`` lists them),
    their outputs come with the claim, read by the same statement. ``notify_if_full``: notify the tenant's
    workers (at commit) when ``limit`` tasks were claimed, since more may be ready.
    """
    if limit < 1:
        return []
    params = {
        "p_tenant": tenant,
        "p_owner": owner,
        "p_limit": limit,
        "p_lease_s": float(lease_s),
        "p_notify": notify_if_full,
        **{f"p_e_{name}": [e[i] for e in edges] for i, name in enumerate(_EDGE_COLUMNS)},
    }
    rows = conn.execute(_claim_statement(), params).all()
    queued = sorted({r.execution_id for r in rows if r.execution_started_at is None})
    if queued:  # their first claims: they are started now (rows being ended elsewhere are left, never waited on)
        starting = select(_ex.c.id).where(_ex.c.id.in_(queued), _ex.c.started_at.is_(None))
        conn.execute(
            update(_ex).where(_ex.c.id.in_(starting.with_for_update(skip_locked=True))).values(started_at=db_now())
        )
    for r in rows:
        if r.previous_status == "running":  # rare: one statement each, by primary key
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
    claims = [
        Claim(
            execution_id=r.execution_id,
            task_id=r.task_id,
            attempt=r.attempt,
            tenant=r.tenant,
            namespace=r.namespace,
            package=r.package,
            package_version=r.package_version,
            context_in=r.context_in,
            lease_expires_at=r.lease_expires_at,
            reclaimed_from=r.previous_owner if r.previous_status == "running" else None,
        )
        for r in rows
    ]
    if dependencies is None:
        return claims
    for i, (claim, r) in enumerate(zip(claims, rows, strict=True)):
        deps = dependencies(claim.namespace, claim.package_version, claim.task_id)
        if deps is None:
            continue
        found: dict[str, dict[str, Any]] = {
            tid: out if out is not None else {} for tid, out in json.loads(r.parent_outputs or "{}").items()
        }
        if all(d in found for d in deps):
            claims[i] = replace(claim, parent_outputs={d: found[d] for d in deps})
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
    # rows locked now are being ended (by this worker, or skipped or taken over by another): renewing them
    # waits for nothing, so a batch of ends and the renewal never wait on each other in a cycle
    mine = (
        select(_te.c.execution_id, _te.c.task_id)
        .where(_te.c.lease_owner == owner, _te.c.status == "running")
        .with_for_update(skip_locked=True)
    )
    rows = conn.execute(
        update(_te)
        .where(tuple_(_te.c.execution_id, _te.c.task_id).in_(mine))
        .values(lease_expires_at=db_now() + lease_s)
        .returning(_te.c.execution_id, _te.c.task_id, _te.c.attempt)
    )
    return {(str(r[0]), str(r[1]), int(r[2])) for r in rows}


def _held(claim: Claim, owner: str) -> ColumnElement[bool]:
    return and_(
        _te.c.execution_id == claim.execution_id,
        _te.c.task_id == claim.task_id,
        _te.c.status == "running",
        _te.c.lease_owner == owner,
        _te.c.attempt == claim.attempt,
    )


def store_running_output(conn: Connection, owner: str, rows: Sequence[tuple[str, str, int, str, int]]) -> None:
    """Store what running attempts (``execution_id, task_id, attempt, output, output_cut``) wrote so far,
    where ``owner`` still runs them (an attempt that ended, or passed to another worker, is left as it is)."""
    statement = (
        update(_ta)
        .where(
            _ta.c.execution_id == bindparam("b_execution_id"),
            _ta.c.task_id == bindparam("b_task_id"),
            _ta.c.attempt == bindparam("b_attempt"),
            _ta.c.status == "running",
            _ta.c.worker == owner,
        )
        .values(output=bindparam("b_output"), output_cut=bindparam("b_output_cut"))
    )
    names = ("b_execution_id", "b_task_id", "b_attempt", "b_output", "b_output_cut")
    conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])


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


def cancelled_executions(conn: Connection, execution_ids: Sequence[str]) -> set[str]:
    """Those of ``execution_ids`` that were cancelled."""
    rows = conn.execute(select(_ex.c.id).where(_ex.c.id.in_(list(execution_ids)), _ex.c.status == "cancelled"))
    return {str(r[0]) for r in rows}


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
            _te.c.status.in_((*_WAITING, "running")),
        )
    )
    value = conn.execute(query).scalar()
    return None if value is None else max(0.0, float(value))
