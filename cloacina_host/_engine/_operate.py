"""Operating stored executions: cancel one wherever it runs, retry a finished one, record who asked.

A cancel is stored (``executions.cancel_requested_at`` and an ``execution_events`` row); the host that
runs the execution sees it (the same runner at once, another at its next lease renewal, distributed
workers at theirs) and ends it as the kit's rule says (``_machine.after_cancel``). An execution no host
runs (queued, its host gone, or distributed: the workers' pool holds no lease of its own) is ended here,
by the caller, in the same transaction.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from cloacina_workflow import TaskStatus, Workflow
from cloacina_workflow import _machine as m

from .._errors import NotFoundError, UsageError
from .._storage import Database
from .._storage import _operate as op
from .._storage._claims import DISTRIBUTED_OWNER
from .._storage._queries import dumps

__all__ = [
    "CancelOutcome",
    "ExecutionEndedError",
    "ExecutionRunningError",
    "actor_name",
    "cancel_execution",
    "host_gone",
    "record_event",
    "reset_for_retry",
]


def actor_name() -> str:
    """Who asks, as ``execution_events.actor`` records it: ``user@hostname``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


class ExecutionEndedError(UsageError):
    """A cancel asked of an execution that has ended already (exit status 1)."""

    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"Execution {execution_id} already ended with status {status}; there is nothing to cancel.")
        self.execution_id = execution_id
        self.status = status


class ExecutionRunningError(UsageError):
    """A retry asked of an execution that has not ended (exit status 1)."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(
            f"Execution {execution_id} is still running; only a finished one can be retried. Wait for it "
            f"(cloacina-ctl executions watch {execution_id}) or cancel it (cloacina-ctl executions cancel "
            f"{execution_id}) first."
        )
        self.execution_id = execution_id


def host_gone(owner: str | None, expires: float | None, now: float) -> bool:
    """Whether no live host holds an execution leased by ``owner`` until ``expires`` (``host:pid:token``).

    Unowned, or its lease lapsed, or held by a process of this machine that no longer exists.
    """
    if owner is None or expires is None or expires < now:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit() and int(pid_text) != os.getpid():
        return not _pid_alive(int(pid_text))
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did: ``ended`` it here, or left it to ``owner``, the host running it."""

    execution_id: str
    ended: bool
    owner: str | None
    status: str  # the execution's status now


def _not_found(execution_id: str, tenant: str, db: Database) -> NotFoundError:
    return NotFoundError(
        f"No execution {execution_id!r} in tenant {tenant!r} of {db.display_url}. "
        "List them with `cloacina-ctl executions list`."
    )


def cancel_execution(db: Database, *, tenant: str, execution_id: str, actor: str) -> CancelOutcome:
    """Store a cancel of ``execution_id`` by ``actor``; end it at once when no host runs it.

    ``NotFoundError`` when there is no such execution, ``ExecutionEndedError`` when it has ended.
    """
    with db.write("cancelling an execution") as conn:
        state = op.execution_state(conn, execution_id)
        if state is None or state.tenant != tenant:
            raise _not_found(execution_id, tenant, db)
        if state.status != "running":
            raise ExecutionEndedError(execution_id, state.status)
        now = time.time()
        op.request_cancel(conn, execution_id=execution_id, at=now)
        op.add_event(
            conn, execution_id=execution_id, at=now, kind="cancel", actor=actor, detail={"owner": state.lease_owner}
        )
        if state.lease_owner != DISTRIBUTED_OWNER and not host_gone(state.lease_owner, state.lease_expires_at, now):
            return CancelOutcome(execution_id, ended=False, owner=state.lease_owner, status="running")
        status = _end_here(conn, state, actor, now)
    return CancelOutcome(execution_id, ended=True, owner=None, status=status)


def _end_here(conn: Any, state: op.ExecutionState, actor: str, now: float) -> str:
    """End a cancelled execution no single host runs, as the rule says: its unended tasks ``cancelled``."""
    cancelled = m.after_cancel(state.tasks)
    ended = {**state.tasks, **dict.fromkeys(cancelled, TaskStatus.CANCELLED)}
    end = m.execution_end([(tid, status, None) for tid, status in ended.items()])
    outputs = {tid: json.loads(text) if text else {} for tid, text in state.outputs.items()}
    context = m.final_context(json.loads(state.context_in), list(state.tasks), outputs)
    op.end_cancelled(
        conn,
        execution_id=state.id,
        tasks=cancelled,
        reason=m.cancel_reason(actor),
        status=end.status,
        error=end.error,
        context_out=dumps(context),
        now=now,
    )
    return str(end.status)


def reset_for_retry(
    db: Database,
    *,
    tenant: str,
    execution_id: str,
    workflow: Workflow,
    package_version: str | None,
    workflow_fingerprint: str | None,
    latest: bool,
    owner: str | None,
    lease_s: float,
    actor: str,
) -> list[str]:
    """Make finished execution ``execution_id`` run its failed, skipped and cancelled tasks again (the rule:
    ``_machine.retryable``) on ``workflow`` at ``package_version``; record who asked. Returns those tasks.

    ``owner``: the host that runs it now (None: queued for a ``serve``). Refused (``UsageError``) when it
    runs, when nothing is left to retry, or when ``workflow`` no longer has the same tasks.
    """
    with db.write("retrying an execution") as conn:
        state = op.execution_state(conn, execution_id)
        if state is None or state.tenant != tenant:
            raise _not_found(execution_id, tenant, db)
        if state.status == "running":
            raise ExecutionRunningError(execution_id)
        _check_same_tasks(execution_id, state.tasks, workflow, package_version)
        tasks = m.retryable(state.tasks)
        if not tasks:
            raise UsageError(
                f"Execution {execution_id} {state.status}: no task failed, was skipped or cancelled, so there is "
                f"nothing to retry. Start it again with: cloacina-ctl executions rerun {execution_id}"
            )
        now = time.time()
        op.reset_for_retry(
            conn,
            execution_id=execution_id,
            tasks=tasks,
            package_version=package_version,
            workflow_fingerprint=workflow_fingerprint,
            owner=owner,
            lease_expires_at=None if owner is None else now + lease_s,
            now=now,
        )
        op.add_event(
            conn,
            execution_id=execution_id,
            at=now,
            kind="retry",
            actor=actor,
            detail={"version": package_version, "latest": latest, "tasks": tasks, "was": state.status},
        )
    return tasks


def _check_same_tasks(execution_id: str, stored: dict[str, str], workflow: Workflow, version: str | None) -> None:
    """Refuse a retry on a workflow whose tasks are not the ones the execution has."""
    have, want = set(stored), set(workflow.order)
    if have == want:
        return
    parts = []
    if want - have:
        parts.append(f"adds {', '.join(sorted(want - have))}")
    if have - want:
        parts.append(f"drops {', '.join(sorted(have - want))}")
    at = f" version {version}" if version else ""
    raise UsageError(
        f"Cannot retry execution {execution_id} on {workflow.name}{at}: its task set changed ({'; '.join(parts)}). "
        f"Retry it on the version it ran (without --latest), or start a new execution: "
        f"cloacina-ctl executions rerun {execution_id}"
    )


def record_event(db: Database, *, execution_id: str, kind: str, actor: str, detail: dict[str, Any]) -> None:
    """Record that ``actor`` asked ``kind`` of an execution (a rerun, on the execution it reran)."""
    with db.write("recording an execution event") as conn:
        op.add_event(conn, execution_id=execution_id, at=time.time(), kind=kind, actor=actor, detail=detail)


def cancel_requests(db: Database, execution_ids: list[str]) -> dict[str, str | None]:
    """Of these running executions, those a cancel was asked of: ``{id: who asked}``."""
    with db.read("reading cancel requests") as conn:
        return op.cancel_requests(conn, execution_ids)
