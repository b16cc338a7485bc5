"""What each attempt of an execution's tasks wrote, as ``executions logs`` and the API's logs route give it.

``selected_attempts`` picks the attempts asked for (one task, one attempt number, or all) and names
those there are when the one asked for is not; ``logs_json`` is the document both print or return.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .._errors import NotFoundError
from .._storage import AttemptRecord, ExecutionRecord, TaskRecord
from ._views import attempt_output_json

__all__ = ["logs_json", "selected_attempts"]


def selected_attempts(
    record: ExecutionRecord, task_id: str | None, attempt: int | None
) -> Iterator[tuple[TaskRecord, AttemptRecord]]:
    """The attempts asked for, in workflow order.

    An unknown task or attempt is ``NotFoundError`` naming those there are.
    """
    tasks = list(record.tasks)
    if task_id is not None:
        tasks = [t for t in tasks if t.task_id == task_id]
        if not tasks:
            names = ", ".join(t.task_id for t in record.tasks) or "none"
            raise NotFoundError(f"Execution {record.id} has no task {task_id!r} (its tasks: {names}).")
    for t in tasks:
        attempts = list(t.attempts)
        if attempt is not None:
            attempts = [a for a in attempts if a.attempt == attempt]
            if not attempts and task_id is not None:
                there = ", ".join(str(a.attempt) for a in t.attempts) or "none yet"
                raise NotFoundError(
                    f"Task {t.task_id!r} of execution {record.id} has no attempt {attempt} (its attempts: {there})."
                )
        yield from ((t, a) for a in attempts)
    if attempt is not None and task_id is None and not any(a.attempt == attempt for t in tasks for a in t.attempts):
        most = max((a.attempt for t in tasks for a in t.attempts), default=0)
        raise NotFoundError(f"No task of execution {record.id} has an attempt {attempt} (the most any has: {most}).")


def logs_json(record: ExecutionRecord, task_id: str | None = None, attempt: int | None = None) -> dict[str, Any]:
    """``executions logs --json``: the execution's status and the selected attempts with their output."""
    return {
        "execution_id": record.id,
        "status": record.status,
        "attempts": [
            {"task_id": t.task_id, "attempt": a.attempt, "status": a.status, **attempt_output_json(a)}
            for t, a in selected_attempts(record, task_id, attempt)
        ],
    }
