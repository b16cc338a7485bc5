"""The error tree shared by the kit and the host.

``CloacinaError`` is the single root: the host's own errors (storage, discovery, CLI) derive from it
too, so ``except CloacinaError`` catches everything Cloacina raises on purpose.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import ClassVar


class CloacinaError(Exception):
    """Root of every error Cloacina raises on purpose."""


class WorkflowDefinitionError(CloacinaError):
    """A workflow or task definition breaks a rule (unknown dependency, duplicate id, cycle...).

    ``workflow`` and ``task`` name the definition concerned (``task`` may be ``None``).
    """

    def __init__(self, message: str, *, workflow: str | None = None, task: str | None = None) -> None:
        super().__init__(message)
        self.workflow = workflow
        self.task = task


class ContextError(CloacinaError):
    """A context operation was refused. ``key`` names the key concerned."""

    KeyExists: ClassVar[type[ContextKeyExists]]
    KeyNotFound: ClassVar[type[ContextKeyNotFound]]
    NotSerializable: ClassVar[type[ContextNotSerializable]]

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ContextKeyExists(ContextError):
    """``insert`` of a key that is already present (use ``update`` or ``set``)."""


class ContextKeyNotFound(ContextError, KeyError):
    """``update`` or ``remove`` of a key that is absent (use ``insert`` or ``set``)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class ContextNotSerializable(ContextError, TypeError):
    """A value that is not JSON (or a key that is not a string) was written to a context."""


ContextError.KeyExists = ContextKeyExists
ContextError.KeyNotFound = ContextKeyNotFound
ContextError.NotSerializable = ContextNotSerializable


class TaskError(CloacinaError):
    """Root of task failures. Raise one of its variants from a task to fail it with a reason.

    ``TaskError.ValidationFailed(message=...)`` (never retried when the task's ``retry_condition``
    is ``transient``), ``TaskError.ExecutionFailed(message=...)``, ``TaskError.Timeout(message=...)``.
    """

    ValidationFailed: ClassVar[type[TaskValidationFailed]]
    ExecutionFailed: ClassVar[type[TaskExecutionFailed]]
    Timeout: ClassVar[type[TaskTimeout]]
    Deferred: ClassVar[type[TaskDeferred]]

    #: Whether a retry has a chance of succeeding (consulted by ``retry_condition="transient"``).
    transient: ClassVar[bool] = False

    def __init__(self, message: str = "", *, task: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.task = task

    def is_transient(self) -> bool:
        """Whether a retry may succeed; ``retry_condition="transient"`` retries only these."""
        return type(self).transient

    def __reduce__(self) -> tuple[object, ...]:  # keep keyword-only fields across pickling
        return (_rebuild_task_error, (type(self), self.message, self.task))


def _rebuild_task_error(cls: type[TaskError], message: str, task: str | None) -> TaskError:
    return cls(message, task=task)


class TaskValidationFailed(TaskError):
    """The task's input is wrong: retrying will not help."""


class TaskExecutionFailed(TaskError):
    """The task failed while doing its work; a retry may succeed."""

    transient = True


class TaskTimeout(TaskError):
    """The task ran longer than its ``timeout_s``."""

    transient = True


class TaskDeferred(TaskError):
    """Not a failure: the task asks to run again later, ``seconds`` from now or at ``until``.

    ``raise TaskError.Deferred(seconds=300, reason="the export is not there yet")`` or
    ``raise TaskError.Deferred(until=datetime(2030, 1, 1, tzinfo=timezone.utc))``. The attempt ends
    ``deferred`` (its output is dropped), the task waits without holding a place under
    ``max_concurrent_tasks`` or a worker, then runs again with the same input. A deferral uses none of
    the task's retry attempts; a task may defer at most ``limits.MAX_DEFERRALS`` times in one execution.
    """

    def __init__(
        self,
        reason: str = "",
        *,
        seconds: float | None = None,
        until: datetime | float | None = None,
        task: str | None = None,
    ) -> None:
        if (seconds is None) == (until is None):
            raise ValueError(
                "TaskError.Deferred needs exactly one of seconds= (how long to wait) or until= (a timezone-aware "
                f"datetime); got seconds={seconds!r}, until={until!r}"
            )
        until_ts: float | None = None
        if isinstance(until, datetime):
            if until.tzinfo is None or until.utcoffset() is None:
                raise ValueError(
                    f"TaskError.Deferred(until={until!r}) needs a timezone-aware datetime, e.g. "
                    "datetime.now(timezone.utc) + timedelta(minutes=5)"
                )
            until_ts = until.timestamp()
        elif until is not None:
            until_ts = float(until)  # seconds since the epoch (how it travels between processes)
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"TaskError.Deferred(seconds={seconds!r}) needs a finite number of seconds >= 0")
        if until_ts is not None and not math.isfinite(until_ts):
            raise ValueError(f"TaskError.Deferred(until={until!r}) is not a time")
        self.reason = reason
        self.seconds = None if seconds is None else float(seconds)
        self.until_ts = until_ts
        when = f"for {self.seconds:g}s" if self.seconds is not None else f"until {format_time(until_ts or 0.0)}"
        super().__init__(f"deferred {when}" + (f": {reason}" if reason else ""), task=task)

    def delay_s(self, now: float) -> float:
        """Seconds from ``now`` (seconds since the epoch) until the task may run again."""
        if self.seconds is not None:
            return self.seconds
        return max(0.0, (self.until_ts or 0.0) - now)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_deferred, (self.reason, self.seconds, self.until_ts, self.task))


def _rebuild_deferred(reason: str, seconds: float | None, until_ts: float | None, task: str | None) -> TaskDeferred:
    return TaskDeferred(reason, seconds=seconds, until=until_ts, task=task)


def format_time(ts: float) -> str:
    """A time (seconds since the epoch) as users read it in errors and notes: ISO 8601, UTC, whole seconds."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


TaskError.ValidationFailed = TaskValidationFailed
TaskError.ExecutionFailed = TaskExecutionFailed
TaskError.Timeout = TaskTimeout
TaskError.Deferred = TaskDeferred


class InputError(CloacinaError):
    """A context does not fit the workflow's declared input (``@workflow(input=Model)``); nothing was stored.

    ``workflow`` names the workflow, ``problems`` holds one ``'field': rule (got value)`` text per error.
    """

    def __init__(self, message: str, *, workflow: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.workflow = workflow
        self.problems = problems
