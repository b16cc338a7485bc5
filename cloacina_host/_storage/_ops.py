"""The engine's writes as typed operations: each builder names its fields and returns the ``Op`` the
group-commit writer runs (``Write`` kind, bind parameters). The row layouts and the bind-parameter
names (``b_*`` for the ``WHERE`` of an update) live here, beside the statements in ``_queries.WRITES``.

Builders are plain functions returning the tuple the writer groups, so a write costs one call more
than a literal dict, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ._queries import Write
from ._writer import Op

__all__ = [
    "attempt_output",
    "execution_row",
    "finish_attempt",
    "finish_execution",
    "insert_attempt",
    "insert_execution",
    "insert_tasks",
    "ran",
    "renew_leases",
    "task_rows",
    "task_started",
    "task_state",
]


def execution_row(
    execution_id: str,
    *,
    tenant: str,
    namespace: str,
    package: str,
    workflow: str,
    package_version: str | None,
    workflow_fingerprint: str | None,
    context_in: str,
    created_at: float,
    lease_owner: str | None = None,
    lease_expires_at: float | None = None,
    queued: bool = False,
    rerun_of: str | None = None,
    started_by: str = "manual",
) -> dict[str, Any]:
    """The ``executions`` row of a new, running execution; ``context_in`` is its stored JSON.

    ``queued``: stored for another host to start (``started_at`` stays None until one does).
    ``rerun_of``: the execution whose input it reuses.
    ``started_by``: what started it, ``manual`` or ``schedule NAME at TIME``.
    """
    return {
        "id": execution_id,
        "tenant": tenant,
        "namespace": namespace,
        "package": package,
        "workflow": workflow,
        "package_version": package_version,
        "workflow_fingerprint": workflow_fingerprint,
        "status": "running",
        "context_in": context_in,
        "context_out": None,
        "error": None,
        "created_at": created_at,
        "finished_at": None,
        "lease_owner": lease_owner,
        "lease_expires_at": lease_expires_at,
        "started_at": None if queued else created_at,
        "cancel_requested_at": None,
        "rerun_of": rerun_of,
        "started_by": started_by,
    }


def task_rows(execution_id: str, task_ids: Iterable[str], *, ready: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The ``task_executions`` rows of a new execution, in ``task_ids`` order: ``ready`` ones ready, others pending."""
    ready = set(ready)
    return [
        {
            "execution_id": execution_id,
            "task_id": tid,
            "position": position,
            "status": "ready" if tid in ready else "pending",
            "attempt": 0,
            "ready_at": None,
            "started_at": None,
            "finished_at": None,
            "duration_s": None,
            "error": None,
            "context_out": None,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        for position, tid in enumerate(task_ids)
    ]


def insert_execution(row: dict[str, Any]) -> Op:
    """Store a new execution (its row from ``execution_row``)."""
    return (Write.INSERT_EXECUTION, row)


def insert_tasks(execution_id: str, task_ids: Iterable[str]) -> list[Op]:
    """Store a new execution's tasks, all pending."""
    return [(Write.INSERT_TASK, row) for row in task_rows(execution_id, task_ids)]


def insert_attempt(
    execution_id: str,
    task_id: str,
    attempt: int,
    *,
    started_at: float,
    worker: str,
    status: str = "running",
    finished_at: float | None = None,
    error: str | None = None,
    traceback: str | None = None,
) -> Op:
    """Record that attempt ``attempt`` of a task started, run by ``worker`` (and how it ended, if it has)."""
    return (
        Write.INSERT_ATTEMPT,
        {
            "execution_id": execution_id,
            "task_id": task_id,
            "attempt": attempt,
            "status": status,
            "started_at": started_at,
            "finished_at": finished_at,
            "error": error,
            "traceback": traceback,
            "worker": worker,
            "output": None,
            "output_cut": None,
        },
    )


def task_started(execution_id: str, task_id: str, attempt: int, *, started_at: float) -> Op:
    """Mark a task running its attempt ``attempt`` (its first start time is kept)."""
    return (
        Write.TASK_STARTED,
        {"b_execution_id": execution_id, "b_task_id": task_id, "attempt": attempt, "started_at": started_at},
    )


def finish_attempt(
    execution_id: str,
    task_id: str,
    attempt: int,
    *,
    status: str,
    finished_at: float,
    error: str | None = None,
    traceback: str | None = None,
    output: str | None = None,
    output_cut: int | None = None,
) -> Op:
    """End attempt ``attempt`` of a task: ``completed``, ``deferred`` or ``failed`` (with its error and traceback), with
    what it wrote (``output``, in ``_output``'s stored form; ``output_cut`` bytes dropped over the cap)."""
    return (
        Write.FINISH_ATTEMPT,
        {
            "b_execution_id": execution_id,
            "b_task_id": task_id,
            "b_attempt": attempt,
            "status": status,
            "finished_at": finished_at,
            "error": error,
            "traceback": traceback,
            "output": output,
            "output_cut": output_cut,
        },
    )


def attempt_output(execution_id: str, task_id: str, attempt: int, *, output: str, output_cut: int | None) -> Op:
    """Store what a running attempt has written so far (nothing once it has ended: its end stores it all)."""
    return (
        Write.ATTEMPT_OUTPUT,
        {
            "b_execution_id": execution_id,
            "b_task_id": task_id,
            "b_attempt": attempt,
            "output": output,
            "output_cut": output_cut,
        },
    )


def task_state(
    execution_id: str,
    task_id: str,
    *,
    status: str,
    ready_at: float | None = None,
    finished_at: float | None = None,
    duration_s: float | None = None,
    error: str | None = None,
    context_out: str | None = None,
) -> Op:
    """Set a task's state: ``completed`` (with its output JSON), ``retry_wait`` or ``deferred`` (until
    ``ready_at``), ``failed`` or ``skipped``."""
    return (
        Write.TASK_STATE,
        {
            "b_execution_id": execution_id,
            "b_task_id": task_id,
            "status": status,
            "ready_at": ready_at,
            "finished_at": finished_at,
            "duration_s": duration_s,
            "error": error,
            "context_out": context_out,
        },
    )


def ran(started: Sequence[Op], ended: Sequence[Op]) -> list[Op]:
    """An attempt's start (``insert_attempt``, ``task_started``) and the writes of its end
    (``finish_attempt``, ``task_state``, others) as the writes of one commit: the attempt row is inserted
    already finished and the task row updated once, instead of two writes to each row."""
    attempt_row: dict[str, Any] | None = None
    began: dict[str, Any] | None = None
    for kind, params in started:
        if kind == Write.INSERT_ATTEMPT:
            attempt_row = dict(params)
        elif kind == Write.TASK_STARTED:
            began = dict(params)
        else:
            raise ValueError(f"not a write of an attempt's start: {kind!r}")
    merged: list[Op] = []
    for kind, params in ended:
        if (
            kind == Write.FINISH_ATTEMPT
            and attempt_row is not None
            and (params["b_execution_id"], params["b_task_id"], params["b_attempt"])
            == (attempt_row["execution_id"], attempt_row["task_id"], attempt_row["attempt"])
        ):
            attempt_row.update(
                status=params["status"],
                finished_at=params["finished_at"],
                error=params["error"],
                traceback=params["traceback"],
                output=params["output"],
                output_cut=params["output_cut"],
            )
            merged.append((Write.INSERT_ATTEMPT, attempt_row))
            attempt_row = None
        elif (
            kind == Write.TASK_STATE
            and began is not None
            and (params["b_execution_id"], params["b_task_id"]) == (began["b_execution_id"], began["b_task_id"])
        ):
            merged.append((Write.TASK_RAN, {**params, "attempt": began["attempt"], "started_at": began["started_at"]}))
            began = None
        else:
            merged.append((kind, params))
    # a start whose end has no matching write keeps its own (a batch applies starts before ends)
    if attempt_row is not None:
        merged.append((Write.INSERT_ATTEMPT, attempt_row))
    if began is not None:
        merged.append((Write.TASK_STARTED, began))
    return merged


def finish_execution(execution_id: str, *, status: str, finished_at: float, context_out: str, error: str | None) -> Op:
    """End an execution with its final context (JSON) and error; its lease is dropped."""
    return (
        Write.FINISH_EXECUTION,
        {
            "b_id": execution_id,
            "status": status,
            "finished_at": finished_at,
            "context_out": context_out,
            "error": error,
        },
    )


def renew_leases(owner: str, *, lease_expires_at: float) -> Op:
    """Extend the lease of every running execution ``owner`` holds to ``lease_expires_at``."""
    return (Write.RENEW_LEASES, {"b_owner": owner, "lease_expires_at": lease_expires_at})
