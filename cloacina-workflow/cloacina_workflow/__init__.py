"""Cloacina's authoring kit: define tasks and workflows, pass a JSON context, test in memory."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._context import Context, JSONValue
from ._errors import (
    CloacinaError,
    ContextError,
    TaskError,
    WorkflowDefinitionError,
)
from ._task import RetryPolicy, Task, TaskSpec, task
from ._workflow import DEFAULT_TENANT, EMBEDDED_PACKAGE, ContextConflict, Workflow, workflow
from .hookspecs import hookimpl, hookspec

try:
    __version__ = version("cloacina-workflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "DEFAULT_TENANT",
    "EMBEDDED_PACKAGE",
    "CloacinaError",
    "Context",
    "ContextConflict",
    "ContextError",
    "JSONValue",
    "RetryPolicy",
    "Task",
    "TaskError",
    "TaskSpec",
    "Workflow",
    "WorkflowDefinitionError",
    "__version__",
    "hookimpl",
    "hookspec",
    "task",
    "workflow",
]
