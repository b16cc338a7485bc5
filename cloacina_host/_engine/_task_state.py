"""What the durable engine knows of each task of an execution it drives, and how a resume rebuilds it."""

from __future__ import annotations

from dataclasses import dataclass

from cloacina_workflow import TaskStatus, Workflow

from .._storage import ExecutionRecord
from .._storage._queries import dumps

__all__ = ["TaskState", "stored_states"]


@dataclass(slots=True)
class TaskState:
    """One task's state in memory (what its rows say, and what is not committed yet)."""

    status: TaskStatus = TaskStatus.PENDING
    attempt: int = 0  # attempts started, interrupted ones included
    failures: int = 0  # failed attempts: what the retry policy counts
    deferrals: int = 0  # attempts that deferred the task (TaskError.Deferred): not failures
    started_at: float | None = None
    finished_at: float | None = None
    ready_at: float | None = None  # a retry waiting for its delay (or a deferred task) runs again from here
    stored: bool = False  # its completion is committed: dependents may start
    error: str | None = None
    errors: tuple[str, ...] = ()  # each failed attempt's traceback (a tuple: no list per task that never fails)


def stored_states(record: ExecutionRecord, workflow: Workflow) -> tuple[dict[str, TaskState], dict[str, str]]:
    """Each task's state, and the outputs of the completed ones (their JSON), as ``record`` stored them.

    Completed tasks keep their output and never run again; the retry policy counts only the
    failures since the execution was last restarted by a retry (``record.started_at``).
    """
    states: dict[str, TaskState] = {}
    outputs: dict[str, str] = {}
    stored = {t.task_id: t for t in record.tasks}
    since = record.started_at  # a retry restarted it then: the retry policy counts the failures after it
    for tid in workflow.order:
        t = stored.get(tid)
        if t is None:  # the workflow gained a task since (a later issue pins versions); run it
            states[tid] = TaskState()
            continue
        states[tid] = TaskState(
            status=TaskStatus(t.status),
            attempt=max((a.attempt for a in t.attempts), default=t.attempt),
            failures=sum(1 for a in t.attempts if a.status == "failed" and (since is None or a.started_at >= since)),
            deferrals=sum(1 for a in t.attempts if a.status == "deferred" and (since is None or a.started_at >= since)),
            started_at=t.started_at,
            finished_at=t.finished_at,
            ready_at=t.ready_at,
            error=t.error,
            errors=tuple(a.traceback or a.error or "" for a in t.attempts if a.status == "failed"),
        )
        if t.status == TaskStatus.COMPLETED:
            outputs[tid] = dumps(t.context_out or {})
            states[tid].stored = True
    return states, outputs
