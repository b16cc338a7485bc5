"""Cloacina's authoring kit: define tasks and workflows, pass a JSON context, test in memory."""

from __future__ import annotations

from typing import Any

from ._context import Context, JSONValue
from ._errors import (
    CloacinaError,
    ContextError,
    TaskError,
    WorkflowDefinitionError,
)
from ._machine import ExecutionStatus, TaskOutcome, TaskStatus
from ._schedule import Schedule
from ._task import RetryPolicy, Task, TaskSpec, task
from ._trigger import Fire, PollInfo, Skip, Trigger, TriggerSpec, trigger
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
    "Context",
    "ContextConflict",
    "ContextError",
    "ExecutionStatus",
    "Fire",
    "JSONValue",
    "LimitExceeded",
    "PollInfo",
    "RetryPolicy",
    "Schedule",
    "Skip",
    "Task",
    "TaskError",
    "TaskOutcome",
    "TaskSpec",
    "TaskStatus",
    "Trigger",
    "TriggerSpec",
    "Workflow",
    "WorkflowDefinitionError",
    "__version__",
    "hookimpl",
    "hookspec",
    "task",
    "trigger",
    "workflow",
]
