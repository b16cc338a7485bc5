"""Run a workflow in memory, with no database: for package authors' tests.

The same rules as the host's engine: a task starts as soon as its last dependency completes, its
input is the initial context merged with its dependencies' outputs (the later-declared dependency
wins a conflict), failures are retried per the task's policy, ``timeout_s`` is enforced, and when a
task fails for good its dependents are skipped and the run fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ._context import Context, JSONValue
from ._errors import TaskError
from ._outcome import as_task_failure
from ._task import Task
from ._workflow import ContextConflict, Workflow

__all__ = ["RunResult", "TaskOutcome", "arun_workflow", "run_workflow"]

log = logging.getLogger("cloacina_workflow.testing")

TaskStatus = Literal["completed", "failed", "skipped"]


@dataclass
class TaskOutcome:
    """How one task ended: status, attempts made, seconds spent, and the last error if any."""

    status: TaskStatus
    attempts: int = 0
    duration_s: float = 0.0
    error: str | None = None
    errors: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """The outcome of a run: ``status`` is ``completed`` or ``failed``."""

    status: Literal["completed", "failed"]
    context: Context
    tasks: dict[str, TaskOutcome]

    @property
    def ok(self) -> bool:
        return self.status == "completed"


async def _guarded(task: Task, context: Context) -> None:
    """Run ``task`` once; what it must not raise (``SystemExit``...) becomes ``TaskError.ExecutionFailed``.

    Inside the coroutine, before asyncio sees it: an event loop re-raises ``SystemExit`` and
    ``KeyboardInterrupt`` out of ``run()``, and a custom ``BaseException`` would escape the runner.
    """
    try:
        await task.run(context)
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:  # task code: turned into a failed attempt
        raise as_task_failure(task.id, exc) from exc


async def _attempt(wf: Workflow, task_id: str, context: Context) -> None:
    """One attempt in its own asyncio task: a ``CancelledError`` the task raises itself fails it, while
    the cancellation of the runner (from outside) cancels the attempt and goes on up.
    """
    task = wf.tasks[task_id]
    run = _guarded(task, context)
    inner = asyncio.ensure_future(run if task.timeout_s is None else asyncio.wait_for(run, task.timeout_s))
    try:
        await asyncio.wait({inner})
    except asyncio.CancelledError:
        inner.cancel()
        raise
    if inner.cancelled():
        raise as_task_failure(task_id, asyncio.CancelledError())
    exc = inner.exception()
    if exc is None:
        return
    if task.timeout_s is not None and isinstance(exc, asyncio.TimeoutError):
        raise TaskError.Timeout(f"task {task_id!r} exceeded its timeout of {task.timeout_s:g}s", task=task_id) from None
    raise exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__qualname__}: {exc}"


async def arun_workflow(
    wf: Workflow,
    context: Mapping[str, object] | Context | None = None,
    *,
    honour_retry_delays: bool = True,
) -> RunResult:
    """Run ``wf`` with ``context`` as its initial context and return the result.

    ``honour_retry_delays=False`` retries at once, to keep tests of retry logic fast.
    """
    initial = (context if isinstance(context, Context) else Context(context or {})).to_dict()
    outputs: dict[str, dict[str, JSONValue]] = {}
    outcomes: dict[str, TaskOutcome] = {}
    pending = {tid: len(wf.tasks[tid].dependencies) for tid in wf.order}

    def on_conflict(c: ContextConflict) -> None:
        log.warning(
            "task %r: dependencies %r and %r wrote different values for %r; %r (declared later) wins",
            c.task_id,
            c.loser,
            c.winner,
            c.key,
            c.winner,
        )

    async def run_task(tid: str) -> None:
        task = wf.tasks[tid]
        outcome = TaskOutcome(status="failed")
        started = time.perf_counter()
        while True:
            outcome.attempts += 1
            ctx = wf.input_context(tid, initial, outputs, on_conflict)
            try:
                await _attempt(wf, tid, ctx)
            except Exception as exc:  # noqa: BLE001  # a task may raise anything; that fails it
                outcome.errors.append("".join(traceback.format_exception(exc)))
                outcome.error = _describe(exc)
                if task.retry.should_retry(exc, outcome.attempts):
                    if honour_retry_delays:
                        await asyncio.sleep(task.retry.delay_s(outcome.attempts))
                    continue
                break
            else:
                outputs[tid] = ctx.to_dict()
                outcome.status = "completed"
                outcome.error = None
                break
        outcome.duration_s = time.perf_counter() - started
        outcomes[tid] = outcome

    running: dict[asyncio.Task[None], str] = {}
    for tid in wf.roots():
        running[asyncio.ensure_future(run_task(tid))] = tid
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                tid = running.pop(fut)
                fut.result()
                if outcomes[tid].status != "completed":
                    continue
                for child in wf.dependents[tid]:
                    pending[child] -= 1
                    if pending[child] == 0:
                        running[asyncio.ensure_future(run_task(child))] = child
    except asyncio.CancelledError:  # the caller cancelled the run: so are its running tasks
        for fut in running:
            fut.cancel()
        raise
    for tid in wf.order:
        if tid not in outcomes:
            outcomes[tid] = TaskOutcome(status="skipped", error="an upstream task failed")
    status: Literal["completed", "failed"] = (
        "completed" if all(o.status == "completed" for o in outcomes.values()) else "failed"
    )
    return RunResult(status=status, context=wf.final_context(initial, outputs), tasks=outcomes)


def run_workflow(
    wf: Workflow,
    context: Mapping[str, object] | Context | None = None,
    *,
    honour_retry_delays: bool = True,
) -> RunResult:
    """Synchronous form of ``arun_workflow``; call it where no event loop is running."""
    return asyncio.run(arun_workflow(wf, context, honour_retry_delays=honour_retry_delays))
