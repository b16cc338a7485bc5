"""Every start of an execution checks its initial context against the workflow's input, before storing.

``run``, ``DefaultRunner.execute``/``submit`` (local, detached or distributed) and scheduled fires all
come here. A workflow defined in this process checks with its pydantic model; a registered one, whose
code the host does not import, asks its package's worker process (``_workers.check_remote_input``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloacina_workflow import Workflow

from .._workers import check_remote_input

__all__ = ["check_start_input"]


async def check_start_input(workflow: Workflow, context: Mapping[str, Any]) -> None:
    """Raise ``InputError`` (nothing stored yet) unless ``context`` fits ``workflow``'s declared input."""
    if workflow.input_model is not None:
        workflow.check_input(context)
    elif workflow.input_schema is not None:
        await check_remote_input(workflow, context)
