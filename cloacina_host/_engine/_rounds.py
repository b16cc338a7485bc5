"""A distributed worker's round: one transaction that stores a batch of ends, then claims what slots are free.

Storing the ends asks ``_ends`` what each means (``decide_end``, ``settle_after``, ``final_of``), makes
dependents ready or skips them, finishes the executions whose every task ended, and wakes the
workers of the tenants where tasks became ready; the queries are ``_storage/_claims`` and ``_ends``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloacina_workflow import TaskError, TaskStatus
from cloacina_workflow import _machine as m

from .._storage import _channel as ch
from .._storage import _claims as c
from .._storage import _ends as se
from ._dispatch import WorkflowResolver
from ._ends import AGAIN, End, Outcome, decide_end, final_of, settle_after
from ._live import with_output


@dataclass(frozen=True)
class Round:
    """The transaction of a worker's rounds, for ``tenant`` under ``owner``'s leases of ``lease_s`` seconds."""

    tenant: str
    owner: str
    lease_s: float
    resolver: WorkflowResolver

    def __call__(self, conn: Any, ends: list[End], limit: int) -> tuple[list[Outcome], list[c.Claim], float | None]:
        outcomes, ready, retried = self.store_ends(conn, ends) if ends else ([], set(), set())
        # wake the other workers when ready tasks may be left for them: not when this claim took them all
        claims = self.claim(conn, limit, notify_if_full=self.tenant in ready)
        due = None
        if len(claims) < limit:
            due = self.due(conn)
        for tenant in sorted(retried | (ready - {self.tenant} if limit else ready)):
            ch.notify(conn, tenant)
        return outcomes, claims, due

    def claim(self, conn: Any, limit: int, *, notify_if_full: bool = False) -> list[c.Claim]:
        return c.claim_tasks(
            conn,
            tenant=self.tenant,
            owner=self.owner,
            limit=limit,
            lease_s=self.lease_s,
            dependencies=getattr(self.resolver, "dependencies", None),
            edges=edges() if (edges := getattr(self.resolver, "edges", None)) is not None else (),
            notify_if_full=notify_if_full,
        )

    def due(self, conn: Any) -> float | None:
        return c.seconds_until_due(conn, tenant=self.tenant)

    def store_ends(self, conn: Any, ends: list[End]) -> tuple[list[Outcome], set[str], set[str]]:
        """End a batch of attempts in this transaction: make dependents ready or skip them, finish executions.

        Returns each end's outcome, and the tenants in which tasks became ready or wait for a retry.
        """
        raised = [e.claim.key for e in ends if e.error is not None]
        failures = se.failed_attempt_counts(conn, raised)  # no statement unless some raised
        deferred = [e.claim.key for e in ends if isinstance(e.error, TaskError.Deferred)]
        deferrals = se.attempt_counts(conn, deferred, "deferred") if deferred else {}
        outcomes: dict[tuple[str, str], Outcome] = {}
        stored: list[se.TaskEnd] = []
        for e in ends:
            outcome, task_end = decide_end(e, failures.get(e.claim.key, 0) + 1, deferrals.get(e.claim.key, 0))
            outcomes[e.claim.key] = outcome
            stored.append(with_output(task_end, e.written))
        batch = se.end_tasks(conn, owner=self.owner, ends=stored)  # locks, ends, and reads the tasks: one statement
        locked, tasks = batch.executions, batch.tasks
        ended = [e for e in ends if e.claim.key in batch.ended]
        ready_in: set[str] = set()
        retried_in = {e.claim.tenant for e in ended if outcomes[e.claim.key].status in AGAIN}
        ready: set[tuple[str, str]] = set()
        last: dict[str, End] = {}
        for e in ended:
            eid, tid = e.claim.key
            outcome = outcomes[e.claim.key]
            statuses = tasks[eid].statuses
            last[eid] = e
            if outcome.status not in (TaskStatus.FAILED, TaskStatus.COMPLETED):
                continue
            if e.workflow is None:  # which tasks depend on it is unknown here: none of those waiting can run
                downstream = [t for t, st in statuses.items() if st == TaskStatus.PENDING]
                skips = dict.fromkeys(downstream, m.skip_reason(tid, unloadable=True))
                starting: tuple[str, ...] = ()
            else:
                settled = settle_after(conn, e.workflow, e.claim, statuses)
                skips, starting = dict(settled.skip), settled.start
            for why in dict.fromkeys(skips.values()):  # one statement per reason
                same = [t for t, r in skips.items() if r == why]
                done = se.skip_tasks(conn, execution_id=eid, task_ids=same, reason=why)
                outcome.skipped.update(dict.fromkeys(done, why))
                statuses.update(dict.fromkeys(done, TaskStatus.SKIPPED))
            for t in starting:
                statuses[t] = TaskStatus.READY
                ready.add((eid, t))
                ready_in.add(locked[eid].tenant)
        finished: list[se.ExecutionEnd] = []
        for eid, e in last.items():
            if not m.all_ended(tasks[eid].statuses.values()):
                continue
            results = tasks[eid].results
            if results is None:  # it ended with this batch's skips: read what the tasks left
                results = se.task_results(conn, execution_id=eid)
            status, context, error = final_of(results, locked[eid].context_in, e.workflow)
            finished.append(se.ExecutionEnd(eid, status, context, error))
            outcomes[e.claim.key].finished = (status, context)
        se.settle(conn, ready=ready, finished=finished)  # one statement: dependents ready, executions finished
        lost = Outcome(lost=True)
        return [outcomes[e.claim.key] if e in ended else lost for e in ends], ready_in, retried_in
