"""One execution of a workflow, driven to its end: readiness, attempts, retries, timeouts, skips.

No polling: when a task's completion is committed, the commit's callback starts every dependent
whose last dependency that was. Each state change goes to the group-commit writer; the engine waits
for durability exactly where something depends on it (a dependent starts, a retry is scheduled,
the execution ends), and holds the record of an attempt's start back (``_storage._held``) so that it
rides along with the attempt's end, in one commit, unless the attempt runs longer than a moment.

What an execution in flight holds is its state, not asyncio machinery: an asyncio task exists only
for an attempt that runs (or waits out a retry's delay); one waiting for a place under the limit is
an entry in ``Slots``' queue, one waiting for its end's commit a callback on the writer's future, and
the execution itself a future of its result (``start``). Outputs are kept as the JSON stored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cloacina_workflow import Context, ContextConflict, JSONValue, Task, TaskStatus, Workflow
from cloacina_workflow import _machine as m

from .._output import AttemptOutput
from .._storage import ExecutionRecord, GroupCommitWriter, Op
from .._storage import _ops as ops_
from .._storage._held import HeldWrite, HeldWrites
from .._storage._queries import dumps
from .._workers import STOP_REQUEST, StopRequest
from ._events import EventEmitter
from ._guard import TaskSlot, call_task, check_output_size
from ._live import LiveOutputs, store_with
from ._results import ExecutionResult, ExecutionStatus, TaskOutcome
from ._rows import dump_context, execution_row
from ._slots import Slots
from ._task_state import TaskState, stored_states

log = logging.getLogger("cloacina_host.engine")

__all__ = ["EngineServices", "ExecutionRun"]


@dataclass
class EngineServices:
    """What every execution of one runner shares."""

    writer: GroupCommitWriter
    events: EventEmitter
    semaphore: Slots
    executor: concurrent.futures.Executor
    owner: str
    lease_s: float
    default_timeout_s: float | None = None
    #: told of each execution's end (its id and result future), whatever ended it: the runner forgets it
    on_end: Callable[[str, asyncio.Future[ExecutionResult]], None] | None = None
    held: HeldWrites = field(init=False)  # attempts' start records, held to ride along with their end
    live: LiveOutputs = field(init=False)  # running attempts' output, stored before they end

    def __post_init__(self) -> None:
        self.held = HeldWrites(self.writer)
        self.live = LiveOutputs(store_with(self.writer))


class ExecutionRun:
    """Drives one execution. Build with ``new`` (then store ``insert_ops()``) or ``resume``, then ``start()``
    it: ``outcome`` is the future of its result."""

    __slots__ = (  # thousands may be in flight: no __dict__ each
        "_cancelled",
        "_context",
        "_done",
        "_final",
        "_finish_stored",
        "_finished_at",
        "_opening",
        "_remaining",
        "_starts",
        "_stop",
        "_tasks",
        "_unstarted",
        "_written",
        "cancel_requested",
        "created_at",
        "execution_id",
        "initial",
        "namespace",
        "outputs",
        "services",
        "states",
        "workflow",
    )

    def __init__(
        self,
        services: EngineServices,
        *,
        execution_id: str,
        namespace: str,
        workflow: Workflow,
        initial: dict[str, JSONValue],
        created_at: float,
        states: dict[str, TaskState],
        outputs: dict[str, str],
    ) -> None:
        self.services = services
        self.execution_id = execution_id
        self.namespace = namespace
        self.workflow = workflow
        self.initial = initial
        self.created_at = created_at
        self.states = states
        #: each completed task's output context, as the JSON stored: a string is a fraction of the objects
        #: it holds, and a dependent's input is parsed from it fresh (a private copy, as a task must get)
        self.outputs = outputs
        self._remaining = sum(1 for s in states.values() if s.status not in m.TERMINAL)
        self._unstarted = 0  # coroutines handed a place under the limit that have not begun to run yet
        self._starts: dict[str, HeldWrite] = {}  # attempts' start records not submitted yet
        self._written: dict[str, AttemptOutput] = {}  # each task's latest attempt's output (kept if cancelled)
        self._done: asyncio.Future[ExecutionResult] | None = None  # the result, once the end is committed
        self._opening: asyncio.Task[None] | None = None  # what a start stores before its tasks run (rare)
        #: the context of the caller that started it: what runs after a commit runs in it (not in a copy of
        #: the ended attempt's, which would keep that attempt's output buffer alive until the commit)
        self._context: contextvars.Context | None = None
        self._final: ExecutionResult | None = None
        self._finished_at: float | None = None
        self._finish_stored = False  # the execution's end is committed: its result may be reported
        self._tasks: dict[str, asyncio.Task[None]] = {}  # the coroutine driving each task started
        self._stop = StopRequest()  # set by a cancel: a registered package's task ends with its worker
        self._cancelled = False
        #: a cancel was asked before this run started (a resumed execution): it ends at once
        self.cancel_requested: str | None = None

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def new(
        cls, services: EngineServices, *, namespace: str, workflow: Workflow, initial: dict[str, JSONValue]
    ) -> ExecutionRun:
        return cls(
            services,
            execution_id=str(uuid.uuid4()),
            namespace=namespace,
            workflow=workflow,
            initial=initial,
            created_at=time.time(),
            states={tid: TaskState() for tid in workflow.order},
            outputs={},
        )

    def insert_ops(
        self,
        *,
        tenant: str,
        package: str,
        package_version: str | None,
        workflow_fingerprint: str | None = None,
        owned: bool = True,
        rerun_of: str | None = None,
    ) -> list[Op]:
        """The writes that record this new execution and its tasks (all ``pending``).

        ``owned=False`` stores it without a lease, queued for whichever host picks it up (a detached submit).
        """
        ops: list[Op] = [
            ops_.insert_execution(
                execution_row(
                    self.execution_id,
                    tenant=tenant,
                    namespace=self.namespace,
                    package=package,
                    workflow=self.workflow,
                    package_version=package_version,
                    workflow_fingerprint=workflow_fingerprint,
                    initial=self.initial,
                    created_at=self.created_at,
                    lease_owner=self.services.owner if owned else None,
                    lease_expires_at=self.created_at + self.services.lease_s if owned else None,
                    queued=not owned,
                    rerun_of=rerun_of,
                )
            )
        ]
        ops += ops_.insert_tasks(self.execution_id, self.workflow.order)
        return ops

    @classmethod
    def resume(cls, services: EngineServices, record: ExecutionRecord, workflow: Workflow) -> ExecutionRun:
        """Pick up a stored execution: completed tasks keep their output and never run again."""
        states, outputs = stored_states(record, workflow)
        run = cls(
            services,
            execution_id=record.id,
            namespace=record.namespace,
            workflow=workflow,
            initial=record.context_in,
            created_at=record.created_at,
            states=states,
            outputs=outputs,
        )
        if record.cancel_requested_at is not None:
            run.cancel_requested = next((e.actor for e in reversed(record.events) if e.kind == "cancel"), "")
        return run

    # -- driving ----------------------------------------------------------------------------------

    @property
    def outcome(self) -> asyncio.Future[ExecutionResult]:
        """The future of the execution's result, made by ``start``."""
        assert self._done is not None, "not started"
        return self._done

    def start(self) -> asyncio.Future[ExecutionResult]:
        """Start every task that can still run; return the future of the execution's result.

        No asyncio task of its own drives the execution: each branch's coroutine (``_drive_task``) does,
        and the last to end resolves the future once the end is committed, so an execution in flight
        costs no task, frame or wake-up more than its running branches. Cancelling the future stops
        them (their attempts' start records still reach storage); a storage failure is its exception.
        """
        done: asyncio.Future[ExecutionResult] = asyncio.get_running_loop().create_future()
        self._done = done
        self._context = contextvars.copy_context()
        done.add_done_callback(self._ended, context=self._context)
        self.services.events.emit(
            "cloacina_execution_started", execution_id=self.execution_id, workflow=self.namespace, context=self.initial
        )
        try:
            # start (or resume): what every ended task decides, skips a crash may have left unstored included
            start, skipped = self._settle(self.workflow.order)
            if skipped or self.cancel_requested is not None or self._remaining == 0:
                self._opening = asyncio.ensure_future(self._open(start, skipped))  # something to store first
            else:
                self._spawn_started(start)
        except Exception as exc:  # noqa: BLE001  # a bug: the execution cannot go on
            self._fail(exc)
        return done

    async def _open(self, start: set[str], skipped: list[str]) -> None:
        """What a start must store before its tasks run: skips, a cancel asked before it started, or the end."""
        try:
            if skipped:
                await self._store_skips(skipped)
            if self.cancel_requested is not None and self._remaining > 0:
                await self.cancel(self.cancel_requested or None)
            elif self._remaining == 0:
                if not self._finish_stored:
                    await self.services.writer.submit(self._finish_ops())
                    self._finish_stored = True
                self._maybe_done()
            else:
                self._spawn_started(start)
        except Exception as exc:  # noqa: BLE001  # storage failed: the execution cannot go on
            self._fail(exc)

    def _spawn_started(self, start: set[str]) -> None:
        now = time.time()
        for tid in self.workflow.order:
            state = self.states[tid]
            if state.status in (TaskStatus.RETRY_WAIT, TaskStatus.DEFERRED):  # waits on, from its stored time
                self._spawn(tid, m.retry_wait_left(state.ready_at, now))
            elif tid in start:
                self._spawn(tid)

    def _fail(self, exc: BaseException) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    def _ended(self, done: asyncio.Future[ExecutionResult]) -> None:
        """The result is set (or the run was cancelled, or failed): stop what still runs, report the end."""
        for t in self._tasks.values():
            if not t.done():
                t.cancel()
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        self._give_back_unstarted()
        on_end = self.services.on_end
        if on_end is not None:
            on_end(self.execution_id, done)
        if done.cancelled() or done.exception() is not None:
            return
        if self.services.events.observed("cloacina_execution_finished"):  # to_dict copies: only when heard
            result = done.result()
            self.services.events.emit(
                "cloacina_execution_finished",
                execution_id=self.execution_id,
                workflow=self.namespace,
                status=result.status,
                context=result.context.to_dict(),
            )

    def _waiting(self, tid: str) -> bool:
        """Whether ``tid`` waits to be started (not yet, or again after a failed or deferred attempt)."""
        return self.states[tid].status in (TaskStatus.PENDING, TaskStatus.RETRY_WAIT, TaskStatus.DEFERRED)

    def _settled_status(self, tid: str) -> str:
        """``tid``'s status as its dependents see it: a completion counts once its output is committed."""
        state = self.states[tid]
        return TaskStatus.RUNNING if state.status == TaskStatus.COMPLETED and not state.stored else state.status

    def _settle(self, candidates: Iterable[str]) -> tuple[set[str], list[str]]:
        """Ask the machine which of ``candidates`` start and which are skipped; mark the skips (in memory).

        Returns the tasks to start and the tasks skipped (their writes: ``_skip_ops``).
        """
        settled = m.settle(
            self.workflow,
            candidates,
            status=self._settled_status,
            reason=lambda t: self.states[t].error,
            context=lambda t: self._input(t).to_dict(),
        )
        now = time.time()
        for tid, why in settled.skip:
            state = self.states[tid]
            state.status, state.finished_at, state.error = TaskStatus.SKIPPED, now, why
        self._remaining -= len(settled.skip)
        return set(settled.start), [tid for tid, _why in settled.skip]

    def _parsed(self, tids: Iterable[str]) -> dict[str, dict[str, JSONValue]]:
        """The outputs of those of ``tids`` that completed, parsed (each a new copy)."""
        outputs = self.outputs
        return {tid: json.loads(outputs[tid]) for tid in tids if tid in outputs}

    def _input(self, tid: str, on_conflict: Callable[[ContextConflict], None] | None = None) -> Context:
        """The context ``tid`` starts with: the initial context overlaid by its dependencies' outputs."""
        deps = self._parsed(self.workflow.tasks[tid].dependencies)
        return self.workflow.input_context(tid, self.initial, deps, on_conflict)

    async def _store_skips(self, skipped: list[str]) -> None:
        """Commit skips decided after an end was stored (a condition, a trigger rule), and the end when they end it."""
        ops = self._skip_ops(skipped)
        if self._remaining == 0:
            ops += self._finish_ops()
        await self.services.writer.submit(ops)
        if self._remaining == 0:
            self._finish_stored = True
        for tid in skipped:
            self._emit_finished(tid)

    def _spawn(self, tid: str, delay: float = 0.0) -> None:
        state = self.states[tid]
        if not self._waiting(tid) or self._cancelled:
            return  # already started by another path, or the execution is cancelled
        state.status = TaskStatus.READY  # in memory only: keeps a second parent from spawning it again
        slots = self.services.semaphore
        if delay > 0:
            self._start(tid, delay, placed=False)
        elif slots.try_acquire():
            self._start(tid, 0.0, placed=True)
        else:
            slots.queue(self, tid)  # no coroutine until a place is free (``_start_with_place``)

    def _start(self, tid: str, delay: float, *, placed: bool) -> None:
        if placed:
            self._unstarted += 1
        self._tasks[tid] = asyncio.ensure_future(self._drive_task(tid, delay, placed))

    def _give_back_unstarted(self) -> None:
        """Coroutines handed a place but cancelled before they began never run: their places go back."""
        while self._unstarted > 0:
            self._unstarted -= 1
            self.services.semaphore.release()

    def _start_with_place(self, tid: str) -> bool:
        """A place under the limit is handed to queued ``tid``; False (place not taken) if it no longer runs."""
        if self._cancelled or self._done is None or self._done.done() or self.states[tid].status != TaskStatus.READY:
            return False
        self._start(tid, 0.0, placed=True)
        return True

    async def _drive_task(self, tid: str, delay: float, placed: bool = False) -> None:
        """Run ``tid``'s attempts until one's end is submitted: what follows the commit of that end
        (its dependents start, the execution ends) is done by ``_ended_stored``, with no coroutine
        parked on the commit. ``placed``: its first attempt was handed its place under the limit already."""
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            while not self._cancelled and await self._attempt(tid, placed):
                placed = False
        except asyncio.CancelledError:
            start = self._starts.pop(tid, None)
            if start is not None:  # the attempt is abandoned: its record must reach storage for recovery
                start.flush()
            raise
        except Exception as exc:  # noqa: BLE001  # storage failed (or a bug): the execution cannot go on
            self._fail(exc)
        finally:
            if self._tasks.get(tid) is asyncio.current_task():
                del self._tasks[tid]  # an ended task is not kept (nor its coroutine and context) to the end

    def _on_conflict(self, c: ContextConflict) -> None:
        log.warning("execution %s, %s", self.execution_id, m.conflict_text(c))

    async def _call(self, task: Task, context: Any, slot: TaskSlot, output: AttemptOutput) -> None:
        timeout = m.effective_timeout(task, self.services.default_timeout_s)
        await call_task(task, context, timeout, self.services.executor, slot, output)

    async def _attempt(self, tid: str, placed: bool = False) -> bool:
        """Run one attempt of ``tid``; True when it must run again (a retry, a deferral), False once its
        end is submitted (or it never started). ``placed``: it holds its place under the limit already."""
        services = self.services
        task = self.workflow.tasks[tid]
        state = self.states[tid]
        eid = self.execution_id
        # the place under max_concurrent_tasks is held until the task's code really returned (TaskSlot)
        if placed:
            self._unstarted -= 1  # the place is the TaskSlot's now
        else:
            await services.semaphore.acquire()
        with TaskSlot(services.semaphore.release) as slot:
            if self._cancelled:  # cancelled while it waited for its place: never started
                return False
            STOP_REQUEST.set(self._stop)
            state.attempt += 1
            attempt = state.attempt
            started = time.time()
            if state.started_at is None:
                state.started_at = started
            state.status = TaskStatus.RUNNING
            start = self._starts[tid] = services.held.hold(
                [
                    ops_.insert_attempt(eid, tid, attempt, started_at=started, worker=services.owner),
                    ops_.task_started(eid, tid, attempt, started_at=started),
                ]
            )
            services.events.emit(
                "cloacina_task_started",
                execution_id=self.execution_id,
                workflow=self.namespace,
                task_id=tid,
                attempt=attempt,
            )
            error: Exception | None = None
            output_text = ""
            written = self._written[tid] = AttemptOutput(tid)
            services.live.watch(written, eid, tid, attempt)
            try:
                context = self._input(tid, self._on_conflict)
                await self._call(task, context, slot, written)
                # to_dict re-checks values a task mutated in place
                output_text = dump_context(context.to_dict(), f"the output context of task {tid!r}")
                check_output_size(output_text, tid)
            except Exception as exc:  # noqa: BLE001  # a task may raise anything; that fails the attempt
                error = exc
            finally:
                services.live.forget(written)
                written.finish()
        ended = time.time()
        logs, logs_cut = written.stored()
        self._written.pop(tid, None)
        if error is None:
            state.status, state.finished_at, state.error = TaskStatus.COMPLETED, ended, None
            self.outputs[tid] = output_text
            self._remaining -= 1
            ops: list[Op] = [
                ops_.finish_attempt(
                    eid, tid, attempt, status="completed", finished_at=ended, output=logs, output_cut=logs_cut
                ),
                ops_.task_state(
                    eid,
                    tid,
                    status="completed",
                    finished_at=ended,
                    duration_s=ended - state.started_at,
                    context_out=output_text,
                ),
            ]
            ends = self._remaining == 0
            if ends:
                ops += self._finish_ops()
            self._submit_end(tid, start, ops).add_done_callback(
                functools.partial(self._ended_stored, tid, ends, (), ()), context=self._context
            )
            return False

        verdict = m.defer_or_fail(tid, error, state.deferrals, ended)
        if isinstance(verdict, m.Deferral):
            await self._defer(tid, attempt, start, verdict, ended, logs, logs_cut)
            return True
        error = verdict  # the deferral past the cap fails with the cap's error
        message = m.describe(error)
        tb = m.traceback_text(error)
        state.failures += 1
        state.error = message
        state.errors += (tb,)
        failed_attempt = ops_.finish_attempt(
            eid,
            tid,
            attempt,
            status="failed",
            finished_at=ended,
            error=message,
            traceback=tb,
            output=logs,
            output_cut=logs_cut,
        )
        decision = m.after_failure(task, error, state.failures)
        if decision.retry:
            delay = decision.delay_s
            state.status = TaskStatus.RETRY_WAIT
            await self._submit_end(
                tid,
                start,
                [
                    failed_attempt,
                    ops_.task_state(eid, tid, status="retry_wait", ready_at=ended + delay, error=message),
                ],
            )
            services.events.emit(
                "cloacina_task_retrying",
                execution_id=self.execution_id,
                workflow=self.namespace,
                task_id=tid,
                attempt=attempt,
                error=message,
                delay_s=delay,
            )
            if delay > 0:
                await asyncio.sleep(delay)
            return True

        state.status, state.finished_at = TaskStatus.FAILED, ended
        self._remaining -= 1
        ops = [
            failed_attempt,
            ops_.task_state(
                eid, tid, status="failed", finished_at=ended, duration_s=ended - state.started_at, error=message
            ),
        ]
        starting, skipped = self._settle(self.workflow.dependents[tid])
        ops += self._skip_ops(skipped)
        ends = self._remaining == 0
        if ends:
            ops += self._finish_ops()
        children = tuple(sorted(starting, key=self.workflow.position.__getitem__))
        self._submit_end(tid, start, ops).add_done_callback(
            functools.partial(self._ended_stored, tid, ends, tuple(skipped), children), context=self._context
        )
        return False

    def _ended_stored(
        self, tid: str, ends: bool, skipped: tuple[str, ...], children: tuple[str, ...], stored: asyncio.Future[None]
    ) -> None:
        """The end of ``tid``'s attempt is committed (``stored``'s callback): report it, start what it let start.

        A completion settles its dependents now (``children``/``skipped`` are empty then); a failure
        brings them decided and stored with it (a dependent whose trigger rule runs it after a failure).
        """
        if stored.cancelled() or self._done is None or self._done.done():
            return  # the execution ended (cancelled, or a storage failure) while this was committed
        failure = stored.exception()
        if failure is not None:
            self._fail(failure)
            return
        if ends:
            self._finish_stored = True
        state = self.states[tid]
        state.stored = True
        self._emit_finished(tid)
        try:
            if state.status == TaskStatus.COMPLETED:
                starting, settled_skips = self._settle(self.workflow.dependents[tid])
                children = tuple(sorted(starting, key=self.workflow.position.__getitem__))
                if settled_skips:  # a condition or trigger rule skipped some: stored before anything starts
                    self._tasks[tid] = asyncio.ensure_future(self._after_skips(settled_skips, children))
                    return
            for skipped_tid in skipped:
                self._emit_finished(skipped_tid)
            for child in children:
                self._spawn(child)
            self._maybe_done()
        except Exception as exc:  # noqa: BLE001  # a bug: the execution cannot go on
            self._fail(exc)

    async def _after_skips(self, skipped: list[str], children: tuple[str, ...]) -> None:
        try:
            await self._store_skips(skipped)
            for child in children:
                self._spawn(child)
            self._maybe_done()
        except Exception as exc:  # noqa: BLE001  # storage failed: the execution cannot go on
            self._fail(exc)

    async def _defer(
        self,
        tid: str,
        attempt: int,
        start: HeldWrite,
        deferral: m.Deferral,
        ended: float,
        logs: str | None,
        logs_cut: int | None,
    ) -> None:
        """Store that attempt ``attempt`` deferred ``tid`` (its time kept as ``ready_at``); wait, no slot held."""
        state = self.states[tid]
        state.deferrals += 1
        state.status, state.ready_at, state.error = TaskStatus.DEFERRED, deferral.until, deferral.note
        eid = self.execution_id
        await self._submit_end(
            tid,
            start,
            [
                ops_.finish_attempt(
                    eid,
                    tid,
                    attempt,
                    status="deferred",
                    finished_at=ended,
                    error=deferral.note,
                    output=logs,
                    output_cut=logs_cut,
                ),
                ops_.task_state(eid, tid, status="deferred", ready_at=deferral.until, error=deferral.note),
            ],
        )
        log.info("execution %s, task %r %s", eid, tid, deferral.note)
        self.services.events.emit(
            "cloacina_task_deferred",
            execution_id=eid,
            workflow=self.namespace,
            task_id=tid,
            attempt=attempt,
            until=deferral.until,
            note=deferral.note,
        )
        if deferral.delay_s > 0:
            await asyncio.sleep(deferral.delay_s)

    # -- cancel -----------------------------------------------------------------------------------

    async def cancel(self, actor: str | None = None) -> None:
        """End this execution ``cancelled`` (the rule: ``_machine.after_cancel``): tasks not started never
        start, running ones are stopped (an async one cancelled, a plain one's thread abandoned with its
        slot kept, a registered package's ended with its worker process), and that is stored."""
        if self._cancelled or self._remaining == 0 or self._done is None or self._done.done():
            return  # ended (or ending) already
        self._cancelled = True
        self._stop.kill_reason = f"was stopped: execution {self.execution_id} was cancelled"
        stopping = [
            t
            for tid, t in self._tasks.items()
            if not t.done()
            and self.states[tid].status
            in (TaskStatus.READY, TaskStatus.RUNNING, TaskStatus.RETRY_WAIT, TaskStatus.DEFERRED)
        ]
        for t in stopping:
            t.cancel()
        await asyncio.gather(*stopping, return_exceptions=True)  # their attempts' start records are submitted
        self._give_back_unstarted()
        now = time.time()
        reason = m.cancel_reason(actor)
        cancelled = m.after_cancel({tid: s.status for tid, s in self.states.items()})
        ops: list[Op] = []
        for tid in cancelled:
            state = self.states[tid]
            if state.status == TaskStatus.RUNNING:
                written = self._written.get(tid)
                logs, logs_cut = written.stored() if written is not None else (None, None)
                ops.append(
                    ops_.finish_attempt(
                        self.execution_id,
                        tid,
                        state.attempt,
                        status="cancelled",
                        finished_at=now,
                        error=reason,
                        output=logs,
                        output_cut=logs_cut,
                    )
                )
            state.status, state.finished_at, state.error = TaskStatus.CANCELLED, now, reason
            ops.append(
                ops_.task_state(
                    self.execution_id,
                    tid,
                    status=TaskStatus.CANCELLED,
                    finished_at=now,
                    duration_s=0.0 if state.started_at is None else now - state.started_at,
                    error=reason,
                )
            )
        self._remaining -= len(cancelled)
        if self._remaining == 0:
            ops += self._finish_ops()
        await self.services.writer.submit(ops)
        if self._remaining == 0:
            self._finish_stored = True
        for tid in cancelled:
            self._emit_finished(tid)
        self._maybe_done()

    def _submit_end(self, tid: str, start: HeldWrite, ops: list[Op]) -> asyncio.Future[None]:
        """Submit the writes of an attempt's end, with its start when that is still held back; the
        future resolves once they are committed (after the start, when that was submitted on its own)."""
        if self._starts.get(tid) is start:
            del self._starts[tid]
        held = start.take()
        if held is None:
            return start.then_submit(ops)
        return self.services.writer.submit(ops_.ran(held, ops))

    def _skip_ops(self, skipped: list[str]) -> list[Op]:
        """The writes that store the skips ``_settle`` made."""
        return [
            ops_.task_state(
                self.execution_id,
                tid,
                status=TaskStatus.SKIPPED,
                finished_at=self.states[tid].finished_at,
                duration_s=0.0,
                error=self.states[tid].error,
            )
            for tid in skipped
        ]

    def _emit_finished(self, tid: str) -> None:
        state = self.states[tid]
        duration = 0.0
        if state.started_at is not None and state.finished_at is not None:
            duration = state.finished_at - state.started_at
        self.services.events.emit(
            "cloacina_task_finished",
            execution_id=self.execution_id,
            workflow=self.namespace,
            task_id=tid,
            status=state.status,
            attempts=state.attempt,
            duration_s=duration,
            error=state.error,
        )

    def _maybe_done(self) -> None:
        # not before the execution's end is committed: the last task to end may not be the last to store
        if self._remaining == 0 and self._finish_stored and self._done is not None and not self._done.done():
            self._done.set_result(self.result())

    # -- the end ----------------------------------------------------------------------------------

    def result(self) -> ExecutionResult:
        if self._final is not None:
            return self._final
        finished = self._remaining == 0
        end = m.execution_end([(tid, s.status, s.error) for tid, s in self.states.items()])
        tasks = {}
        for tid in self.workflow.order:
            s = self.states[tid]
            duration = 0.0
            if s.started_at is not None and s.finished_at is not None and s.status in m.TERMINAL:
                duration = s.finished_at - s.started_at
            tasks[tid] = TaskOutcome(
                status=s.status,
                attempts=s.attempt,
                duration_s=duration,
                error=s.error,
                errors=list(s.errors),
            )
        result = ExecutionResult(
            execution_id=self.execution_id,
            workflow=self.namespace,
            status=end.status if finished else ExecutionStatus.RUNNING,
            # parsed fresh from the stored outputs: private already, no copy more
            context=Context._trusted(m.final_context(self.initial, self.workflow.order, self._parsed(self.outputs)))
            if finished
            else self.workflow.final_context(self.initial, self._parsed(self.outputs)),
            tasks=tasks,
            error=end.error,
            created_at=self.created_at,
            finished_at=self._finished_at,
        )
        if finished:
            self._final = result
        return result

    def _finish_ops(self) -> list[Op]:
        self._finished_at = time.time()
        result = self.result()
        return [
            ops_.finish_execution(
                self.execution_id,
                status=result.status,
                finished_at=self._finished_at,
                context_out=dumps({key: result.context.get(key) for key in result.context}),  # JSON, no copy
                error=result.error,
            )
        ]
