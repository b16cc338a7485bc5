"""Distributed executions, the deciding side: what one attempt's end means, by the state machine's rules.

A ``DistributedWorker`` (``_distributed``) queues each finished attempt as an ``End``; the
transaction that stores a batch of them (``_rounds``) asks ``decide_end`` (completed, deferred, a retry, failed),
``settle_after`` (which dependents start or are skipped) and ``final_of`` (how an ended execution ends).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloacina_workflow import ExecutionStatus, JSONValue, TaskStatus, Workflow
from cloacina_workflow import _machine as m
from cloacina_workflow.limits import json_depth_exceeded

from .._output import AttemptOutput
from .._storage import _claims as c
from .._storage import _ends as se


@dataclass(eq=False)
class End:
    """A finished attempt waiting in the batch of ends that the next transaction stores."""

    claim: c.Claim
    workflow: Workflow | None
    output: dict[str, JSONValue] | None
    error: BaseException | None
    message: str | None
    traceback: str | None
    stored: asyncio.Future[Outcome]
    written: AttemptOutput | None = None


@dataclass
class Outcome:
    lost: bool = False
    status: TaskStatus | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # task -> why, in workflow order
    retry_delay_s: float | None = None
    note: str | None = None  # the task's error as stored, when not the error raised (a deferral, the cap's error)
    finished: tuple[ExecutionStatus, dict[str, Any]] | None = None  # (status, final context) when it ended


def loads_stored(text: str, what: str) -> Any:
    """A stored context: JSON nested too deep for the parser is ``LimitExceeded``, not ``RecursionError``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json_depth_exceeded(what) from None


#: the ends of an attempt after which its task waits, then runs again
AGAIN = (TaskStatus.RETRY_WAIT, TaskStatus.DEFERRED)


def decide_end(end: End, failures: int, deferrals: int = 0) -> tuple[Outcome, se.TaskEnd]:
    """How an attempt ends: completed, deferred, a retry after a delay, or failed for good (``failures``
    counts this one if it failed; ``deferrals`` the task's earlier deferrals)."""
    claim, workflow, error = end.claim, end.workflow, end.error
    if error is None:
        return Outcome(status=TaskStatus.COMPLETED), se.TaskEnd(claim, TaskStatus.COMPLETED, output=end.output)
    verdict = m.defer_or_fail(claim.task_id, error, deferrals, time.time())
    if isinstance(verdict, m.Deferral):  # the claim is released; the task is claimable again at its time
        task_end = se.TaskEnd(claim, TaskStatus.DEFERRED, error=verdict.note, retry_delay_s=verdict.delay_s)
        return Outcome(status=TaskStatus.DEFERRED, retry_delay_s=verdict.delay_s, note=verdict.note), task_end
    if verdict is not error:  # the deferral past the cap fails with the cap's error
        end = dataclasses.replace(end, error=verdict, message=m.describe(verdict), traceback=m.traceback_text(verdict))
        outcome, task_end = decide_end(end, failures, deferrals)
        outcome.note = end.message
        return outcome, task_end
    decision = m.after_failure(None if workflow is None else workflow.tasks[claim.task_id], error, failures)
    if decision.retry:
        task_end = se.TaskEnd(
            claim, TaskStatus.RETRY_WAIT, error=end.message, traceback=end.traceback, retry_delay_s=decision.delay_s
        )
        return Outcome(status=TaskStatus.RETRY_WAIT, retry_delay_s=decision.delay_s), task_end
    return Outcome(status=TaskStatus.FAILED), se.TaskEnd(
        claim, TaskStatus.FAILED, error=end.message, traceback=end.traceback
    )


def settle_after(conn: Any, workflow: Workflow, claim: c.Claim, statuses: Mapping[str, str]) -> m.Settled:
    """What the end of ``claim``'s task decides (the machine's rule), read in this transaction: the
    reasons of tasks skipped before and the outputs a condition needs are read only when asked for."""
    eid = claim.execution_id
    reasons: dict[str, str | None] = {}

    def reason(tid: str) -> str | None:
        if not reasons:
            reasons.update({r.task_id: r.error for r in se.task_results(conn, execution_id=eid)})
        return reasons.get(tid)

    def context(tid: str) -> Mapping[str, JSONValue]:
        deps = [d for d in workflow.tasks[tid].dependencies if statuses.get(d) == TaskStatus.COMPLETED]
        outputs = c.outputs(conn, execution_id=eid, task_ids=deps)
        return workflow.input_context(tid, json.loads(claim.context_in), outputs).to_dict()

    return m.settle(workflow, workflow.dependents[claim.task_id], status=statuses.get, reason=reason, context=context)


def final_of(
    results: Sequence[se.TaskResult], context_in: str, workflow: Workflow | None
) -> tuple[ExecutionStatus, dict[str, Any], str | None]:
    """An ended execution's status, final context (its tasks' outputs over the input, in workflow order) and error."""
    outputs = {
        row.task_id: json.loads(row.context_out)
        for row in results
        if row.status == TaskStatus.COMPLETED and row.context_out is not None
    }
    order = workflow.order if workflow is not None else [row.task_id for row in results]
    context = m.final_context(json.loads(context_in), order, outputs)
    by_id = {row.task_id: row for row in results}
    end = m.execution_end([(tid, by_id[tid].status, by_id[tid].error) for tid in order if tid in by_id])
    return end.status, context, end.error
