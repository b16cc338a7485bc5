"""The hook contract between workflow plugins, observers and the Cloacina host.

A workflow package's ``cloacina.workflows`` entry point names either a ``Workflow`` object (which
implements ``cloacina_workflows`` itself) or any module or object carrying ``@hookimpl`` functions.
Observers implement the event hooks; each receives keyword arguments and may accept any subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._workflow import Workflow

PROJECT_NAME = "cloacina"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def cloacina_workflows() -> Workflow | Sequence[Workflow]:  # type: ignore[empty-body]
    """Return the workflows this plugin offers: one ``Workflow`` or a sequence of them."""


@hookspec
def cloacina_execution_started(execution_id: str, workflow: str, context: dict[str, Any]) -> None:
    """An execution of ``workflow`` (``tenant::package::workflow``) started with ``context``."""


@hookspec
def cloacina_task_started(execution_id: str, workflow: str, task_id: str, attempt: int) -> None:
    """Attempt ``attempt`` (1-based) of task ``task_id`` started."""


@hookspec
def cloacina_task_retrying(
    execution_id: str, workflow: str, task_id: str, attempt: int, error: str, delay_s: float
) -> None:
    """Attempt ``attempt`` failed with ``error``; the task runs again after ``delay_s`` seconds."""


@hookspec
def cloacina_task_deferred(
    execution_id: str, workflow: str, task_id: str, attempt: int, until: float, note: str
) -> None:
    """Attempt ``attempt`` deferred the task (``TaskError.Deferred``, not a failure); it runs again at ``until``
    (seconds since the epoch). ``note`` says so, with the task's reason."""


@hookspec
def cloacina_task_finished(
    execution_id: str,
    workflow: str,
    task_id: str,
    status: str,
    attempts: int,
    duration_s: float,
    error: str | None,
) -> None:
    """Task ``task_id`` ended for good: ``status`` is ``completed``, ``failed`` or ``skipped``."""


@hookspec
def cloacina_execution_finished(execution_id: str, workflow: str, status: str, context: dict[str, Any]) -> None:
    """The execution ended: ``status`` is ``completed`` or ``failed``; ``context`` is the final one."""
