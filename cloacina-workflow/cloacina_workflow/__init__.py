"""Cloacina's authoring kit: define tasks and workflows, pass a JSON context, test in memory.

Each name is imported on first use (PEP 562), so that importing one light name (``CloacinaError``,
``DEFAULT_TENANT``) does not load pydantic, pluggy and the task machinery: the host's command line
starts without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real imports, for type checkers and IDEs
    __version__: str
    from ._conditions import Condition, Ctx
    from ._context import Context, JSONValue
    from ._errors import CloacinaError, ContextError, InputError, TaskError, WorkflowDefinitionError
    from ._machine import ExecutionStatus, TaskOutcome, TaskStatus
    from ._names import DEFAULT_TENANT, EMBEDDED_PACKAGE
    from ._schedule import Schedule
    from ._task import RetryPolicy, Task, TaskSpec, task
    from ._trigger import Fire, PollInfo, Skip, Trigger, TriggerSpec, trigger
    from ._workflow import ContextConflict, Workflow, workflow
    from .hookspecs import hookimpl, hookspec
    from .limits import LimitExceeded

#: public name -> the module that defines it
_LAZY = {
    "Condition": "._conditions",
    "Ctx": "._conditions",
    "Context": "._context",
    "JSONValue": "._context",
    "CloacinaError": "._errors",
    "ContextError": "._errors",
    "InputError": "._errors",
    "TaskError": "._errors",
    "WorkflowDefinitionError": "._errors",
    "ExecutionStatus": "._machine",
    "TaskOutcome": "._machine",
    "TaskStatus": "._machine",
    "DEFAULT_TENANT": "._names",
    "EMBEDDED_PACKAGE": "._names",
    "Schedule": "._schedule",
    "RetryPolicy": "._task",
    "Task": "._task",
    "TaskSpec": "._task",
    "task": "._task",
    "Fire": "._trigger",
    "PollInfo": "._trigger",
    "Skip": "._trigger",
    "Trigger": "._trigger",
    "TriggerSpec": "._trigger",
    "trigger": "._trigger",
    "ContextConflict": "._workflow",
    "Workflow": "._workflow",
    "workflow": "._workflow",
    "hookimpl": ".hookspecs",
    "hookspec": ".hookspecs",
    "LimitExceeded": ".limits",
}
#: public submodules that ``import cloacina_workflow`` used to load, still reachable as attributes
_SUBMODULES = ("hookspecs", "limits")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # slow to import: only when asked

    try:
        return version("cloacina-workflow")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'cloacina_workflow' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
    "Fire",
    "InputError",
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
