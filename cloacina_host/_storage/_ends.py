"""The batches of ends of distributed executions (PostgreSQL): end attempts, make dependents ready, finish.

Locking, so that dependents become ready exactly once and an execution finishes exactly once:
every transaction that ends attempts (complete, fail) first locks the execution rows, in id order
so that two batches never wait on each other in a cycle, then changes the task row only if the
claim still holds (compare-and-swap on owner and attempt), then the dependents. So the ends of one
execution's tasks are serialised: the one that completes a task's last parent sees every other
parent completed, and the last task to end sees the rest ended. A lease renewal (``_claims``)
skips the rows locked at that moment and never waits either.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
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
    column,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from ._claims import Claim, db_now
from ._queries import TERMINAL_TASK, dumps
from ._schema import executions, task_attempts, task_executions

_ex = executions
_te = task_executions
_ta = task_attempts

#: the ends of an attempt after which its task runs again at ``ready_at`` (now + ``retry_delay_s``)
_AGAIN = ("retry_wait", "deferred")


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
