"""What an execution gives back: its status, final context and one outcome per task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloacina_workflow import Context, ExecutionStatus, TaskOutcome, TaskStatus

from .._storage import ExecutionRecord

__all__ = ["ExecutionResult", "ExecutionStatus", "TaskOutcome", "TaskStatus"]


@dataclass(slots=True)
class ExecutionResult:
    """The outcome of an execution: ``status`` is ``completed`` or ``failed`` (``running`` if unfinished)."""

    execution_id: str
    workflow: str  # tenant::package::workflow
    status: ExecutionStatus
    context: Context
    tasks: dict[str, TaskOutcome]
    error: str | None = None
    created_at: float = 0.0
    finished_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == ExecutionStatus.COMPLETED

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.created_at

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "workflow": self.workflow,
            "status": self.status,
            "error": self.error,
            "duration_s": self.duration_s,
            "context": self.context.to_dict(),
            "tasks": {
                tid: {"status": o.status, "attempts": o.attempts, "duration_s": o.duration_s, "error": o.error}
                for tid, o in self.tasks.items()
            },
        }

    @classmethod
    def from_record(cls, record: ExecutionRecord) -> ExecutionResult:
        tasks: dict[str, TaskOutcome] = {}
        for t in record.tasks:
            tasks[t.task_id] = TaskOutcome(
                status=TaskStatus(t.status),
                attempts=len(t.attempts),
                duration_s=t.duration_s or 0.0,
                error=t.error,
                errors=[a.traceback or a.error or "" for a in t.attempts if a.status == "failed"],
            )
        return cls(
            execution_id=record.id,
            workflow=record.namespace,
            status=ExecutionStatus(record.status),
            context=Context(record.context_out if record.context_out is not None else record.context_in),
            tasks=tasks,
            error=record.error,
            created_at=record.created_at,
            finished_at=record.finished_at,
        )
