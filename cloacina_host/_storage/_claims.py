"""The queries of distributed executions (PostgreSQL): claim, renew, complete, fail, release, notify.

A distributed execution is one whose row's ``lease_owner`` is ``DISTRIBUTED_OWNER``: no single host
drives it; ``cloacina-ctl worker`` processes claim its ready task rows. Every comparison of time
uses the database's clock (``now()``), so leases mean the same on every machine.

Locking, so that dependents become ready exactly once and an execution finishes exactly once:

- a claim locks candidate task rows with ``FOR UPDATE SKIP LOCKED`` and never waits;
- every transaction that ends attempts (complete, fail) first locks the execution rows, in id order
  so that two batches never wait on each other in a cycle, then
  changes the task row only if the claim still holds (compare-and-swap on owner and attempt), then
  the dependents. So the ends of one execution's tasks are serialised: the one that completes a
  task's last parent sees every other parent completed, and the last task to end sees the rest ended;
- a lease renewal skips the rows locked at that moment (being ended) and never waits either.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

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
    any_,
    bindparam,
    case,
    cast,
    column,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from .._errors import StorageError
from ._database import Database
from ._queries import TERMINAL_TASK, dumps
from ._schema import executions, task_attempts, task_executions

#: ``executions.lease_owner`` of a distributed execution: the pool of workers, not one host
DISTRIBUTED_OWNER = "cloacina:distributed"
#: the ``LISTEN``/``NOTIFY`` channel on which workers hear that tasks became ready (payload: the tenant)
CHANNEL = "cloacina_tasks"

T = TypeVar("T")

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


class Session:
    """One connection kept for the transactions of one loop (claims and ends), instead of one per call.

    Use it from one thread at a time. A transaction that fails gives its connection up: the next
    one checks out a fresh (pinged) connection from the pool.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Connection | None = None

    def transaction(self, action: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in one transaction on the kept connection; driver errors are ``StorageError``."""
        with self.db.errors(action):
            if self._conn is None:
                self._conn = self.db.write_engine.connect()
            try:
                with self._conn.begin():
                    return fn(self._conn, *args)
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()


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


#: the statuses of a task that runs once its ``ready_at`` has come
_WAITING = ("ready", "retry_wait", "deferred")
#: the ends of an attempt after which its task runs again at ``ready_at`` (now + ``retry_delay_s``)
_AGAIN = ("retry_wait", "deferred")


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


def _pairs() -> Any:
    """``(execution_id, task_id)`` rows from the array parameters ``p_eids`` and ``p_tids`` (see ``_pair_params``)."""
    return (
        func.unnest(bindparam("p_eids", type_=ARRAY(String)), bindparam("p_tids", type_=ARRAY(String)))
        .table_valued(column("execution_id", String), column("task_id", String))
        .render_derived(name="pairs")
    )


def _pair_params(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"p_eids": [p[0] for p in pairs], "p_tids": [p[1] for p in pairs]}


def _ids() -> Any:
    """The array parameter ``p_ids``: ``column == any_(_ids())`` keeps one statement text for any number of ids."""
    return any_(bindparam("p_ids", type_=ARRAY(String)))


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


@dataclass(frozen=True)
class TaskEnd:
    """How one claimed attempt ended, to be stored by ``end_tasks``: ``completed``, ``failed``, ``retry_wait``
    or ``deferred`` (both run again ``retry_delay_s`` from now)."""

    claim: Claim
    status: str
    output: Mapping[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    retry_delay_s: float | None = None
    #: what the attempt wrote, in ``_output``'s stored form, and the bytes cut over the cap
    logs: str | None = None
    logs_cut: int | None = None


def failed_attempt_counts(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """How many attempts of each task failed (what the retry policy counts; interruptions are not failures).

    ``{(execution_id, task_id): count}``, 0 when none failed.
    """
    return attempt_counts(conn, keys, "failed")


def attempt_counts(conn: Connection, keys: Iterable[tuple[str, str]], status: str) -> dict[tuple[str, str], int]:
    """How many attempts of each task ended ``status`` (``failed``, ``deferred``): ``{(execution_id, task_id): n}``."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = conn.execute(
        select(_ta.c.execution_id, _ta.c.task_id, func.count())
        .where(tuple_(_ta.c.execution_id, _ta.c.task_id).in_(wanted), _ta.c.status == status)
        .group_by(_ta.c.execution_id, _ta.c.task_id)
    )
    counts = dict.fromkeys(wanted, 0)
    counts.update({(str(r[0]), str(r[1])): int(r[2]) for r in rows})
    return counts


#: the columns of the batch of ends, passed as one array parameter each (``p_<name>``)
_END_COLUMNS: dict[str, Any] = {
    "execution_id": String,
    "task_id": String,
    "attempt": Integer,
    "status": String,
    "error": Text,
    "traceback": Text,
    "context_out": Text,
    "retry_delay_s": Float,
    "output": Text,
    "output_cut": Integer,
}


@functools.cache
def _end_statement() -> Select[Any]:
    """The batch of ends in one statement, built once (array parameters ``p_<column>``, ``p_ids``, ``p_owner``).

    It names the execution rows locked before it (``locked``), ends the attempts whose claim still holds in
    the executions still running (``ended``, compare-and-swap on owner and attempt), records their
    attempts, and returns every task of the locked executions as it stands after the ends: one row
    per task (``ex_*`` columns: the execution's; its input context on its first row only), the
    results only where every task of the execution has ended, and whether this batch ended it.
    """
    given = (
        func.unnest(*(bindparam(f"p_{name}", type_=ARRAY(kind)) for name, kind in _END_COLUMNS.items()))
        .table_valued(*(column(name, kind) for name, kind in _END_COLUMNS.items()))
        .render_derived(name="ends")
    )
    # locked already by this transaction (``_lock_statement``): this takes nothing new, and names their rows
    locked = (
        select(_ex.c.id, _ex.c.status, _ex.c.tenant, _ex.c.context_in)
        .where(_ex.c.id == _ids())
        .order_by(_ex.c.id)
        .with_for_update()
        .cte("locked")
    )
    now = db_now()
    terminal = given.c.status.not_in(_AGAIN)
    ended = (
        update(_te)
        .where(
            _te.c.execution_id == given.c.execution_id,
            _te.c.task_id == given.c.task_id,
            _te.c.attempt == given.c.attempt,
            _te.c.status == "running",
            _te.c.lease_owner == bindparam("p_owner", type_=String),
            locked.c.id == given.c.execution_id,
            locked.c.status == "running",
        )
        .values(
            status=given.c.status,
            lease_owner=None,
            lease_expires_at=None,
            error=given.c.error,
            context_out=given.c.context_out,
            ready_at=case((given.c.status.in_(_AGAIN), now + given.c.retry_delay_s), else_=None),
            finished_at=case((terminal, now), else_=None),
            duration_s=case((terminal, now - _te.c.started_at), else_=None),
        )
        .returning(_te.c.execution_id, _te.c.task_id, _te.c.attempt, _te.c.status, _te.c.error, _te.c.context_out)
        .cte("ended")
    )
    attempts = (
        update(_ta)
        .where(
            _ta.c.execution_id == ended.c.execution_id,
            _ta.c.task_id == ended.c.task_id,
            _ta.c.attempt == ended.c.attempt,
            given.c.execution_id == ended.c.execution_id,
            given.c.task_id == ended.c.task_id,
        )
        .values(
            status=case((ended.c.status.in_(("completed", "deferred")), ended.c.status), else_="failed"),
            finished_at=now,
            error=given.c.error,
            traceback=given.c.traceback,
            output=given.c.output,
            output_cut=given.c.output_cut,
        )
        .cte("ended_attempts")
    )
    # the task rows as the statement found them (its own updates are not visible to it) with the ends over them
    here = ended.c.task_id.is_not(None)
    rows = (
        select(
            locked.c.id.label("eid"),
            locked.c.status.label("ex_status"),
            locked.c.tenant.label("ex_tenant"),
            locked.c.context_in.label("ex_context_in"),
            _te.c.task_id,
            _te.c.position,
            func.coalesce(ended.c.status, _te.c.status).label("status"),
            case((here, ended.c.error), else_=_te.c.error).label("error"),
            case((here, ended.c.context_out), else_=_te.c.context_out).label("context_out"),
            here.label("ended"),
        )
        .select_from(
            locked.outerjoin(_te, and_(_te.c.execution_id == locked.c.id, locked.c.status == "running")).outerjoin(
                ended, and_(ended.c.execution_id == _te.c.execution_id, ended.c.task_id == _te.c.task_id)
            )
        )
        .subquery("rows")
    )
    done = func.bool_and(rows.c.status.in_(TERMINAL_TASK)).over(partition_by=rows.c.eid)
    first = func.row_number().over(partition_by=rows.c.eid, order_by=rows.c.position) == 1
    return (
        select(
            rows.c.eid,
            rows.c.ex_status,
            rows.c.ex_tenant,
            case((first, rows.c.ex_context_in), else_=None),
            rows.c.task_id,
            rows.c.status,
            case((done, rows.c.error), else_=None),
            case((done, rows.c.context_out), else_=None),
            done,
            rows.c.ended,
        )
        .order_by(rows.c.eid, rows.c.position)
        .add_cte(attempts)
    )


@functools.cache
def _lock_statement() -> Select[Any]:
    return select(_ex.c.id).where(_ex.c.id == _ids()).order_by(_ex.c.id).with_for_update()


@dataclass(frozen=True)
class ExecutionTasks:
    """The tasks of one execution after a batch of ends: statuses, and results when every task has ended."""

    statuses: dict[str, str]
    #: in workflow order, only when every task had ended (``None`` otherwise)
    results: list[TaskResult] | None


@dataclass(frozen=True)
class LockedExecution:
    """An execution row locked by a batch of ends: its status, tenant and input context (JSON text)."""

    status: str
    tenant: str
    context_in: str


@dataclass
class EndedBatch:
    """What ``end_tasks`` did: the executions it locked, the ends it stored, and the running executions' tasks."""

    executions: dict[str, LockedExecution] = field(default_factory=dict)
    ended: set[tuple[str, str]] = field(default_factory=set)
    tasks: dict[str, ExecutionTasks] = field(default_factory=dict)


def end_tasks(conn: Connection, *, owner: str, ends: Sequence[TaskEnd]) -> EndedBatch:
    """End the attempts (``completed`` with the output, ``failed``, ``retry_wait`` or ``deferred``): lock their
    executions' rows in id order (so that two batches never wait on each other in a cycle), then, in one
    statement, store the ends of those still running and read their tasks as they stand after the ends.

    The lock is a statement of its own: a statement that waited for a lock reads the other tables as they
    were when it began, so the tasks the previous holder ended would look unended to it.

    Compare-and-swap per row: an attempt whose lease passed to another worker, or whose execution is no
    longer running, is left as it is (and missing from ``ended``).
    """
    if not ends:
        return EndedBatch()
    rows = [
        (
            e.claim.execution_id,
            e.claim.task_id,
            e.claim.attempt,
            e.status,
            e.error,
            e.traceback,
            dumps(e.output) if e.output is not None else None,
            e.retry_delay_s,
            e.logs,
            e.logs_cut,
        )
        for e in ends
    ]
    params: dict[str, Any] = {f"p_{name}": [row[i] for row in rows] for i, name in enumerate(_END_COLUMNS)}
    params["p_owner"] = owner
    params["p_ids"] = sorted({e.claim.execution_id for e in ends})
    conn.execute(_lock_statement(), {"p_ids": params["p_ids"]})
    batch = EndedBatch()
    for r in conn.execute(_end_statement(), params):
        eid = str(r[0])
        if eid not in batch.executions:
            batch.executions[eid] = LockedExecution(str(r[1]), str(r[2]), str(r[3]))
        if r[4] is None:  # not running: its tasks were not read
            continue
        tasks = batch.tasks.get(eid)
        if tasks is None:
            tasks = batch.tasks[eid] = ExecutionTasks({}, [] if r[8] else None)
        tasks.statuses[str(r[4])] = str(r[5])
        if tasks.results is not None:
            tasks.results.append(TaskResult(str(r[4]), str(r[5]), r[6], r[7]))
        if r[9]:
            batch.ended.add((eid, str(r[4])))
    return batch


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


@dataclass(frozen=True)
class ExecutionEnd:
    """How a distributed execution ended, for ``finish_executions``."""

    execution_id: str
    status: str
    context_out: Mapping[str, Any]
    error: str | None


def finish_executions(conn: Connection, ends: Sequence[ExecutionEnd]) -> None:
    """Record the end of these distributed executions (one batch of statements, pipelined by the driver)."""
    if not ends:
        return
    conn.execute(
        update(_ex)
        .where(_ex.c.id == bindparam("p_id"), _ex.c.status == "running")
        .values(
            status=bindparam("p_status"),
            finished_at=db_now(),
            context_out=bindparam("p_context"),
            error=bindparam("p_error"),
        ),
        [
            {"p_id": e.execution_id, "p_status": e.status, "p_context": dumps(e.context_out), "p_error": e.error}
            for e in ends
        ],
    )


#: the columns of the executions a batch finishes, one array parameter each (``p_f_<name>``)
_FINISH_COLUMNS: dict[str, Any] = {"id": String, "status": String, "context_out": Text, "error": Text}


@functools.cache
def _settle_statement() -> Select[Any]:
    """Make tasks ready (``p_eids``/``p_tids`` pairs) and finish executions (``p_f_*``) in one statement."""
    pairs = _pairs()
    ready = (
        update(_te)
        .where(_te.c.execution_id == pairs.c.execution_id, _te.c.task_id == pairs.c.task_id, _te.c.status == "pending")
        .values(status="ready", ready_at=db_now())
        .returning(_te.c.task_id)
        .cte("made_ready")
    )
    given = (
        func.unnest(*(bindparam(f"p_f_{name}", type_=ARRAY(kind)) for name, kind in _FINISH_COLUMNS.items()))
        .table_valued(*(column(name, kind) for name, kind in _FINISH_COLUMNS.items()))
        .render_derived(name="finishing")
    )
    finished = (
        update(_ex)
        .where(_ex.c.id == given.c.id, _ex.c.status == "running")
        .values(status=given.c.status, finished_at=db_now(), context_out=given.c.context_out, error=given.c.error)
        .returning(_ex.c.id)
        .cte("finished")
    )
    return select(
        select(func.count()).select_from(ready).scalar_subquery(),
        select(func.count()).select_from(finished).scalar_subquery(),
    )


def settle(conn: Connection, *, ready: Iterable[tuple[str, str]], finished: Sequence[ExecutionEnd]) -> None:
    """After a batch of ends, in one statement: pending tasks whose last dependency just completed become
    claimable now (``(execution_id, task_id)`` pairs), and the executions whose every task ended end."""
    wanted = sorted(set(ready))
    if not wanted and not finished:
        return
    params: dict[str, Any] = _pair_params(wanted)
    rows = [(e.execution_id, str(e.status), dumps(e.context_out), e.error) for e in finished]
    params.update({f"p_f_{name}": [row[i] for row in rows] for i, name in enumerate(_FINISH_COLUMNS)})
    conn.execute(_settle_statement(), params)


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


def count_attempts_by_worker(conn: Connection, execution_ids: Sequence[str]) -> dict[tuple[str, str], int]:
    """``(worker, status) -> attempts`` of these executions (tests and benchmarks)."""
    query = (
        select(_ta.c.worker, _ta.c.status, func.count())
        .where(_ta.c.execution_id.in_(list(execution_ids)))
        .group_by(_ta.c.worker, _ta.c.status)
    )
    return {(str(r[0]), str(r[1])): int(r[2]) for r in conn.execute(query)}
