"""Cloacina's authoring kit: define tasks and workflows, pass a JSON context, test in memory."""

from __future__ import annotations

from typing import Any

from ._conditions import Condition, Ctx
from ._context import Context, JSONValue
from ._errors import (
    CloacinaError,
    ContextError,
    InputError,
    TaskError,
    WorkflowDefinitionError,
)
from ._machine import ExecutionStatus, TaskOutcome, TaskStatus
from ._schedule import Schedule
from ._task import RetryPolicy, Task, TaskSpec, task
from ._workflow import DEFAULT_TENANT, EMBEDDED_PACKAGE, ContextConflict, Workflow, workflow
from .hookspecs import hookimpl, hookspec
from .limits import LimitExceeded


def __getattr__(name: str) -> Any:
    """``__version__`` is read from the installed metadata on first use (importlib.metadata is slow to import)."""
    if name != "__version__":
        raise AttributeError(f"module 'cloacina_workflow' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("cloacina-workflow")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value


__all__ = [
    "DEFAULT_TENANT",
    "EMBEDDED_PACKAGE",
    "CloacinaError",
    "Condition",
    "Context",
    "ContextConflict",
    "ContextError",
    "Ctx",
    "ExecutionStatus",
    "InputError",
    "JSONValue",
    "LimitExceeded",
    "RetryPolicy",
    "Schedule",
    "Task",
    "TaskError",
    "TaskOutcome",
    "TaskSpec",
    "TaskStatus",
    "Workflow",
    "WorkflowDefinitionError",
    "__version__",
    "hookimpl",
    "hookspec",
    "task",
    "workflow",
]
