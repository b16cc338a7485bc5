"""The error tree shared by the kit and the host.

``CloacinaError`` is the single root: the host's own errors (storage, discovery, CLI) derive from it
too, so ``except CloacinaError`` catches everything Cloacina raises on purpose.
"""

from __future__ import annotations

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


TaskError.ValidationFailed = TaskValidationFailed
TaskError.ExecutionFailed = TaskExecutionFailed
TaskError.Timeout = TaskTimeout


class InputError(CloacinaError):
    """A context does not fit the workflow's declared input (``@workflow(input=Model)``); nothing was stored.

    ``workflow`` names the workflow, ``problems`` holds one ``'field': rule (got value)`` text per error.
    """

    def __init__(self, message: str, *, workflow: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.workflow = workflow
        self.problems = problems
