"""Run a workflow in memory, with no database: for package authors' tests.

The same rules as the host's engine, asked of the same module (``cloacina_workflow._machine``): a
task starts as soon as its last dependency completes, its input is the initial context merged with
its dependencies' outputs (the later-declared dependency wins a conflict), failures are retried per
the task's policy, a task that defers itself runs again at its time (a deferral is no failure),
``timeout_s`` is enforced, and when a task fails for good its dependents are
skipped and the run fails; statuses, attempt counts and error texts are the engine's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import _machine as m
from ._context import Context, JSONValue
from ._machine import ExecutionStatus, TaskOutcome, TaskStatus
from ._task import Task
from ._workflow import ContextConflict, Workflow

__all__ = ["RunResult", "TaskOutcome", "arun_workflow", "run_workflow"]

log = logging.getLogger("cloacina_workflow.testing")


@dataclass
class RunResult:
    """The outcome of a run: ``status`` is ``completed`` or ``failed``; ``error`` says which task failed."""

    status: ExecutionStatus
    context: Context
    tasks: dict[str, TaskOutcome]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == ExecutionStatus.COMPLETED


async def _guarded(task: Task, context: Context) -> None:
    """Run ``task`` once; what it must not raise (``SystemExit``...) becomes ``TaskEscapedError``.

    Inside the coroutine, before asyncio sees it: an event loop re-raises ``SystemExit`` and
    ``KeyboardInterrupt`` out of ``run()``, and a custom ``BaseException`` would escape the runner.
    """
    try:
        await task.run(context)
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:  # task code: turned into a failed attempt
        raise m.escaped(task.id, exc) from exc


async def _attempt(task: Task, context: Context) -> None:
    """One attempt in its own asyncio task: a ``CancelledError`` the task raises itself fails it, while
    the cancellation of the runner (from outside) cancels the attempt and goes on up.
    """
    inner = asyncio.ensure_future(_guarded(task, context))
    try:
        done, _ = await asyncio.wait({inner}, timeout=task.timeout_s)
    except asyncio.CancelledError:
        inner.cancel()
        raise
    if not done:
        inner.cancel()
        assert task.timeout_s is not None
        raise m.timeout_error(task.id, task.timeout_s)
    if inner.cancelled():
        raise m.escaped(task.id, asyncio.CancelledError())
    inner.result()


def _on_conflict(c: ContextConflict) -> None:
    log.warning("%s", m.conflict_text(c))


async def arun_workflow(
    wf: Workflow,
    context: Mapping[str, object] | Context | None = None,
    *,
    honour_retry_delays: bool = True,
) -> RunResult:
    """Run ``wf`` with ``context`` as its initial context and return the result.

    ``honour_retry_delays=False`` retries at once, and runs a deferred task (``TaskError.Deferred``)
    again at once, to keep tests of retry and deferral logic fast.
    """
    initial = (context if isinstance(context, Context) else Context(context or {})).to_dict()
    outputs: dict[str, dict[str, JSONValue]] = {}
    outcomes: dict[str, TaskOutcome] = {}

    async def run_task(tid: str) -> None:
        task = wf.tasks[tid]
        outcome = outcomes[tid]
        started = time.perf_counter()
        failures = deferrals = 0
        while True:
            outcome.attempts += 1
            ctx = wf.input_context(tid, initial, outputs, _on_conflict)
            try:
                await _attempt(task, ctx)
                output = ctx.to_dict()  # re-checks values a task mutated in place
            except Exception as exc:  # noqa: BLE001  # a task may raise anything; that fails it
                verdict = m.defer_or_fail(tid, exc, deferrals, time.time())
                if isinstance(verdict, m.Deferral):  # not a failure: runs again at its time
                    deferrals += 1
                    outcome.status, outcome.error = TaskStatus.DEFERRED, verdict.note
                    if honour_retry_delays:
                        await asyncio.sleep(verdict.delay_s)
                    continue
                exc = verdict  # the deferral past the cap fails with the cap's error
                failures += 1
                outcome.errors.append(m.traceback_text(exc))
                outcome.error = m.describe(exc)
                decision = m.after_failure(task, exc, failures)
                if decision.retry:
                    outcome.status = TaskStatus.RETRY_WAIT
                    if honour_retry_delays:
                        await asyncio.sleep(decision.delay_s)
                    continue
                outcome.status = TaskStatus.FAILED
                break
            else:
                outputs[tid] = output
                outcome.status, outcome.error = TaskStatus.COMPLETED, None
                break
        outcome.duration_s = time.perf_counter() - started

    def status(tid: str) -> str:
        outcome = outcomes.get(tid)
        return TaskStatus.PENDING if outcome is None else outcome.status

    def reason(tid: str) -> str | None:
        outcome = outcomes.get(tid)
        return None if outcome is None else outcome.error

    def context_of(tid: str) -> Mapping[str, JSONValue]:
        return wf.input_context(tid, initial, outputs).to_dict()

    running: dict[asyncio.Task[None], str] = {}

    def advance(candidates: Iterable[str]) -> None:
        """Skip and start what the end of a task (or the start of the run) decides."""
        settled = m.settle(wf, candidates, status=status, reason=reason, context=context_of)
        for tid, why in settled.skip:
            outcomes[tid] = TaskOutcome(status=TaskStatus.SKIPPED, error=why)
        for tid in settled.start:
            outcomes[tid] = TaskOutcome(status=TaskStatus.RUNNING)
            running[asyncio.ensure_future(run_task(tid))] = tid

    advance(wf.order)
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                tid = running.pop(fut)
                fut.result()
                advance(wf.dependents[tid])
    except asyncio.CancelledError:  # the caller cancelled the run: so are its running tasks
        for fut in running:
            fut.cancel()
        raise
    end = m.execution_end([(tid, outcomes[tid].status, outcomes[tid].error) for tid in wf.order])
    return RunResult(
        status=end.status,
        context=wf.final_context(initial, outputs),
        tasks={tid: outcomes[tid] for tid in wf.order},
        error=end.error,
    )


def run_workflow(
    wf: Workflow,
    context: Mapping[str, object] | Context | None = None,
    *,
    honour_retry_delays: bool = True,
) -> RunResult:
    """Synchronous form of ``arun_workflow``; call it where no event loop is running."""
    return asyncio.run(arun_workflow(wf, context, honour_retry_delays=honour_retry_delays))
