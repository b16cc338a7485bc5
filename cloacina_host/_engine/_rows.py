"""The stored form of a new execution: its ``executions`` row and ``task_executions`` rows, contexts as JSON.

One place for every way an execution starts (submitted in-process, dispatched to workers, fired by a
schedule or a trigger), so each stores the same rows with the same limits on its initial context.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from cloacina_workflow import JSONValue, Workflow
from cloacina_workflow.limits import MAX_CONTEXT_BYTES, context_too_large, json_depth_exceeded

from .._storage import _ops as ops_
from .._storage._queries import dumps

__all__ = ["dump_context", "dump_initial", "execution_row", "task_rows"]


def dump_context(data: Mapping[str, JSONValue], what: str) -> str:
    """A context as the compact JSON stored; nesting too deep for the encoder is ``LimitExceeded``."""
    try:
        return dumps(data)
    except RecursionError:
        raise json_depth_exceeded(what) from None


def dump_initial(initial: Mapping[str, JSONValue]) -> str:
    """The stored form of an initial context, refused (``LimitExceeded``) over the size limit."""
    text = dump_context(initial, "the initial context")
    if len(text) * 4 > MAX_CONTEXT_BYTES:
        size = len(text.encode())
        if size > MAX_CONTEXT_BYTES:
            raise context_too_large("the initial context", size)
    return text


def execution_row(
    execution_id: str,
    *,
    tenant: str,
    namespace: str,
    package: str,
    workflow: Workflow,
    package_version: str | None,
    workflow_fingerprint: str | None,
    initial: Mapping[str, JSONValue],
    created_at: float,
    lease_owner: str | None = None,
    lease_expires_at: float | None = None,
    queued: bool = False,
    rerun_of: str | None = None,
    started_by: str = "manual",
) -> dict[str, Any]:
    """The ``executions`` row of a new execution (its initial context checked against the limits)."""
    return ops_.execution_row(
        execution_id,
        tenant=tenant,
        namespace=namespace,
        package=package,
        workflow=workflow.name,
        package_version=package_version,
        workflow_fingerprint=workflow_fingerprint,
        context_in=dump_initial(initial),
        created_at=created_at,
        lease_owner=lease_owner,
        lease_expires_at=lease_expires_at,
        queued=queued,
        rerun_of=rerun_of,
        started_by=started_by,
    )


def task_rows(execution_id: str, workflow: Workflow, *, ready: Collection[str] = ()) -> list[dict[str, Any]]:
    """The ``task_executions`` rows of a new execution: ``ready`` ones ready, the others pending."""
    return ops_.task_rows(execution_id, workflow.order, ready=ready)
