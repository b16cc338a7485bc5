"""The rules of running a workflow's DAG, written once; every driver asks here and only does the I/O.

The in-memory runner (``cloacina_workflow.testing``), the durable engine and the distributed worker
each keep their own bookkeeping (a dict, a group-commit writer, rows claimed from PostgreSQL) and
ask this module what it means: which tasks are ready, what a failed attempt means under the task's
retry policy (and how long to wait), what a timeout or an escaped ``BaseException`` is, which
dependents are skipped and why, how an error is told, and how the execution ends. Pure: no I/O, no
asyncio, no clock (times are passed in), so the three drivers cannot disagree.
"""

from __future__ import annotations

import enum
import heapq
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ._context import JSONValue
from ._errors import ContextError, TaskDeferred, TaskError, TaskExecutionFailed, TaskTimeout, format_time
from .limits import MAX_DEFERRALS

if TYPE_CHECKING:
    from ._task import Task
    from ._workflow import ContextConflict, Workflow

__all__ = [
    "RETRYABLE",
    "TERMINAL",
    "Deferral",
    "ExecutionEnd",
    "ExecutionStatus",
    "RemoteError",
    "RetryDecision",
    "Settled",
    "TaskEscapedError",
    "TaskOutcome",
    "TaskStatus",
    "after_cancel",
    "after_failure",
    "all_ended",
    "cancel_reason",
    "conflict_text",
    "defer_or_fail",
    "describe",
    "effective_timeout",
    "escaped",
    "execution_end",
    "final_context",
    "kit_name",
    "rebuild",
    "retry_wait_left",
    "retryable",
    "settle",
    "skip_reason",
    "timeout_error",
    "traceback_text",
]


class _Named(str, enum.Enum):
    """A status whose value is the string stored in the database and shown to users."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:  # f"{status}" is the value on every Python (3.11 changed it)
        return format(str(self.value), spec)


class TaskStatus(_Named):
    """Where a task of an execution stands."""

    PENDING = "pending"  # waiting for its dependencies
    READY = "ready"  # may run now
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"  # a failed attempt; runs again after its delay
    DEFERRED = "deferred"  # the task deferred itself (TaskError.Deferred); runs again at its time
    COMPLETED = "completed"
    FAILED = "failed"  # for good: its retries are spent or it may not retry
    SKIPPED = "skipped"  # never ran: a task upstream failed, or its trigger rule or condition did not hold
    CANCELLED = "cancelled"  # had not ended when its execution was cancelled


class ExecutionStatus(_Named):
    """Where an execution stands: ``running`` until every task has ended."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # a cancel ended it before every task had


#: the statuses a task never leaves (until a retry of its finished execution runs it again)
TERMINAL: frozenset[TaskStatus] = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED}
)


@dataclass(slots=True)  # one per task of every result: no __dict__ each
class TaskOutcome:
    """How one task ended: status, attempts made, seconds from first start to end, last error if any.

    ``errors`` holds the traceback of each failed attempt, oldest first. The same type in every driver.
    """

    status: TaskStatus
    attempts: int = 0
    duration_s: float = 0.0
    error: str | None = None
    errors: list[str] = field(default_factory=list)


# -- how an error is told ---------------------------------------------------------------------------

_VARIANTS = (
    "ValidationFailed",
    "ExecutionFailed",
    "Timeout",
    "Deferred",
    "KeyExists",
    "KeyNotFound",
    "NotSerializable",
)


def kit_name(cls: type[BaseException]) -> str | None:
    """The public name of one of the kit's own error classes (``TaskError.Timeout``, ``ContextError``,
    ``TaskEscapedError``...); ``None`` for any other class, subclasses of those included."""
    for root in (TaskError, ContextError):
        if cls is root:
            return root.__name__
        for attr in _VARIANTS:
            if getattr(root, attr, None) is cls:
                return f"{root.__name__}.{attr}"
    return "TaskEscapedError" if cls is TaskEscapedError else None


def describe(exc: BaseException) -> str:
    """``TaskError.Timeout: message``: the kit's variants by their public names, others by class.

    An error told by another process (``RemoteError``, a registered package's worker) is told as it was there.
    """
    if isinstance(exc, RemoteError):
        return exc.described
    return f"{kit_name(type(exc)) or type(exc).__qualname__}: {exc}"


#: where an error rebuilt from another process keeps that process's traceback (``traceback_text`` gives it)
_REMOTE_TRACEBACK = "__cloacina_traceback__"


def traceback_text(exc: BaseException) -> str:
    """The traceback kept with a failed attempt; for an error raised in another process, that process's."""
    remote = getattr(exc, _REMOTE_TRACEBACK, None)
    if isinstance(remote, str):
        return remote
    import traceback  # here: reading manifests should not pay for it

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class TaskEscapedError(TaskError):
    """A task raised a ``BaseException`` that is not an ``Exception``; the attempt failed with this error."""

    def __init__(self, task_id: str, exc: BaseException) -> None:
        shown = type(exc).__qualname__ + (f"({exc})" if str(exc) else "")
        super().__init__(
            f"task {task_id!r} raised {shown}, a BaseException that is not an Exception; the attempt failed. "
            "Tasks must raise Exception subclasses (e.g. TaskError.ExecutionFailed) to fail.",
            task=task_id,
        )

    def __reduce__(self) -> tuple[object, ...]:  # pickles by its text: what escaped may not pickle
        return (_rebuild_escaped, (self.message, self.task))


def _rebuild_escaped(message: str, task: str | None) -> TaskEscapedError:
    err = TaskEscapedError.__new__(TaskEscapedError)
    TaskError.__init__(err, message, task=task)
    return err


def escaped(task_id: str, exc: BaseException) -> TaskEscapedError:
    """The error that fails an attempt whose task raised ``exc``, a ``BaseException`` outside ``Exception``
    (``SystemExit``, ``KeyboardInterrupt``, its own ``CancelledError``...), instead of stopping the host.
    """
    return TaskEscapedError(task_id, exc)


# -- errors raised in another process (a registered package's worker) --------------------------------


class RemoteError(TaskError):
    """An exception that is not one of the kit's, raised by a task in another process, as it was told there.

    ``describe()`` gives ``described`` (what ``describe`` said of it there), ``traceback_text()`` the
    traceback there, and ``is_transient()`` what ``retry_condition="transient"`` decided of it there, so a
    retry policy decides as it would have in that process.
    """

    def __init__(self, described: str, *, traceback: str, transient: bool, task: str | None = None) -> None:
        super().__init__(described, task=task)
        self.described = described
        self.transient_there = transient
        setattr(self, _REMOTE_TRACEBACK, traceback)

    @property
    def remote_traceback(self) -> str:
        return str(getattr(self, _REMOTE_TRACEBACK))

    def is_transient(self) -> bool:
        return self.transient_there

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_remote, (type(self), self.described, self.remote_traceback, self.transient_there, self.task))


def _rebuild_remote(cls: type[RemoteError], described: str, tb: str, transient: bool, task: str | None) -> RemoteError:
    err = RemoteError.__new__(cls)
    RemoteError.__init__(err, described, traceback=tb, transient=transient, task=task)
    return err


def rebuild(
    name: str, message: str, *, traceback: str, task: str | None = None, key: str | None = None
) -> TaskError | ContextError | None:
    """The kit's error whose ``kit_name`` is ``name``, with ``message`` (its ``str``) and another process's
    ``traceback``, as that process raised it; ``None`` when ``name`` is none of the kit's."""
    classes: list[type[TaskError | ContextError]] = [TaskError, ContextError, TaskEscapedError]
    classes += [getattr(root, attr) for root in (TaskError, ContextError) for attr in _VARIANTS if hasattr(root, attr)]
    cls = next((c for c in classes if kit_name(c) == name), None)
    err: TaskError | ContextError
    if cls is None:
        return None
    if cls is TaskEscapedError:
        err = _rebuild_escaped(message, task)
    elif cls is TaskDeferred:  # told without its time: runs again at once (workers send deferrals on their own)
        err = TaskDeferred(message, seconds=0.0, task=task)
    elif issubclass(cls, TaskError):
        err = cls(message, task=task)
    else:
        err = cls(message, key=key)
    setattr(err, _REMOTE_TRACEBACK, traceback)
    return err


# -- timeouts ----------------------------------------------------------------------------------------


def effective_timeout(task: Task, default_s: float | None) -> float | None:
    """The limit on one attempt of ``task``: its own ``timeout_s``, else the driver's default."""
    return task.timeout_s if task.timeout_s is not None else default_s


def timeout_error(task_id: str, seconds: float) -> TaskTimeout:
    """The error of an attempt that ran past its limit (the task's ``timeout_s`` or the driver's default)."""
    return TaskError.Timeout(
        f"task {task_id!r} ran longer than its timeout of {seconds:g}s and was abandoned; "
        "raise timeout_s (or the runner's default_timeout_s) if it needs more time",
        task=task_id,
    )


# -- a failed attempt ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryDecision:
    """What a failed attempt means: run again after ``delay_s`` seconds, or fail the task for good."""

    retry: bool
    delay_s: float = 0.0


_FINAL = RetryDecision(retry=False)


def after_failure(
    task: Task | None, error: BaseException, failures: int, rng: random.Random | None = None
) -> RetryDecision:
    """What the ``failures``-th failed attempt (1-based) of ``task``, which raised ``error``, means.

    The task's retry policy decides (``retry_attempts``, ``retry_condition``, the backoff and its
    jitter); ``task=None`` (its workflow could not be loaded) fails for good.
    """
    if task is None or not task.retry.should_retry(error, failures):
        return _FINAL
    return RetryDecision(retry=True, delay_s=task.retry.delay_s(failures, rng))


@dataclass(frozen=True)
class Deferral:
    """An attempt that deferred its task (``TaskError.Deferred``): run again in ``delay_s`` seconds, at ``until``.

    Not a failure: the retry policy does not count it. ``note`` is what the attempt and the task record say.
    """

    delay_s: float
    until: float
    note: str


_E = TypeVar("_E", bound=BaseException)


def defer_or_fail(task_id: str, error: _E, deferrals: int, now: float) -> Deferral | _E | TaskExecutionFailed:
    """What an attempt of ``task_id`` that raised ``error`` at ``now`` means, before any retry policy is asked.

    A ``TaskError.Deferred`` is a ``Deferral`` while the task has deferred fewer than ``MAX_DEFERRALS``
    times (``deferrals``, this execution's before this one); past that the attempt fails with an error
    saying so. Any other error is returned as it is: the attempt failed (``after_failure`` decides).
    """
    if not isinstance(error, TaskDeferred):
        return error
    if deferrals >= MAX_DEFERRALS:
        return TaskError.ExecutionFailed(
            f"task {task_id!r} deferred itself {deferrals} times, the most one task may in an execution "
            f"(MAX_DEFERRALS = {MAX_DEFERRALS}); the attempt that asked once more ({error}) failed. "
            "Defer for longer each time, or raise an error when the wait is over",
            task=task_id,
        )
    delay = error.delay_s(now)
    until = now + delay
    note = f"deferred until {format_time(until)}" + (f": {error.reason}" if error.reason else "")
    return Deferral(delay_s=delay, until=until, note=note)


def retry_wait_left(ready_at: float | None, now: float) -> float:
    """Seconds a task in ``retry_wait`` (or ``deferred``) still waits, ``ready_at`` being when it may run again."""
    return 0.0 if ready_at is None else max(0.0, ready_at - now)


# -- readiness and skips ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    """What the end of some tasks decides: the tasks that start now, and those skipped (with the reason).

    Both in workflow order. A skipped task has ended too, so its dependents were decided as well.
    """

    start: tuple[str, ...] = ()
    skip: tuple[tuple[str, str], ...] = ()


#: the start of the reason of a task skipped because a task upstream failed (inherited down the chain)
_UPSTREAM_FAILED = "skipped: upstream task "


def skip_reason(failed_task: str, *, unloadable: bool = False) -> str:
    """The error text of a task skipped because ``failed_task`` failed for good."""
    if unloadable:
        return f"skipped: task {failed_task!r} failed because its workflow could not be loaded"
    return f"{_UPSTREAM_FAILED}{failed_task!r} failed"


def _names_a_failure(reason: str) -> bool:
    return reason.startswith(_UPSTREAM_FAILED) and reason.endswith(" failed")


def _verdict(
    task: Task,
    status: Callable[[str], str | None],
    reason: Callable[[str], str | None],
    context: Callable[[str], Mapping[str, JSONValue]],
) -> str | None:
    """``None`` when ``task`` (every dependency ended) runs; else why it is skipped."""
    deps = task.dependencies
    statuses = [status(d) for d in deps]
    rule = task.spec.trigger_rule
    if rule == "all_succeeded":
        for dep, st in zip(deps, statuses, strict=True):
            if st == TaskStatus.FAILED:
                return skip_reason(dep)
        for dep, st in zip(deps, statuses, strict=True):
            if st != TaskStatus.COMPLETED:
                inherited = reason(dep) or ""
                if st == TaskStatus.SKIPPED and _names_a_failure(inherited):
                    return inherited  # a failure's skips name the task that failed, however far down
                return f"skipped: upstream task {dep!r} was {st}"
    elif rule == "any_failed" and TaskStatus.FAILED not in statuses:
        return f"skipped: trigger rule any_failed: none of its dependencies ({', '.join(map(repr, deps))}) failed"
    if task.spec.when:
        ctx = context(task.id)
        for condition in task.spec.when:
            if not condition.holds(ctx):
                return f"skipped: condition not met: {condition.failed_text(ctx)}"
    return None


def settle(
    workflow: Workflow,
    candidates: Iterable[str],
    *,
    status: Callable[[str], str | None],
    reason: Callable[[str], str | None] = lambda _tid: None,
    context: Callable[[str], Mapping[str, JSONValue]] = lambda _tid: {},
) -> Settled:
    """Decide the ``candidates`` that wait (``pending``) and whose every dependency has ended.

    The one rule of readiness: each task's ``trigger_rule`` on its dependencies' ends, then its ``when``
    conditions on ``context(task)`` (the context it would start with), say whether it starts or is
    skipped; a skip ends it, so its own dependents are decided in turn. Drivers pass the dependents of
    the task that just ended (``workflow.dependents[tid]``), or every task (``workflow.order``) on
    start and resume. ``status`` is the driver's settled status of a task (the durable engine says
    ``running`` of a completed task whose output is not committed yet), ``reason`` a skipped task's reason.
    """
    tasks, position = workflow.tasks, workflow.position
    decided: dict[str, str] = {}  # skipped here: task -> reason

    def status_of(tid: str) -> str | None:
        return TaskStatus.SKIPPED if tid in decided else status(tid)

    def reason_of(tid: str) -> str | None:
        return decided[tid] if tid in decided else reason(tid)

    heap = sorted({position[t] for t in candidates})
    seen = set(heap)
    start: set[str] = set()
    while heap:
        tid = workflow.order[heapq.heappop(heap)]
        if tid in start or status_of(tid) != TaskStatus.PENDING:
            continue
        task = tasks[tid]
        if not all(status_of(d) in TERMINAL for d in task.dependencies):
            continue
        why = _verdict(task, status_of, reason_of, context)
        if why is None:
            start.add(tid)
            continue
        decided[tid] = why
        for child in workflow.dependents[tid]:
            if position[child] not in seen:
                seen.add(position[child])
                heapq.heappush(heap, position[child])
    skip = sorted(decided.items(), key=lambda item: position[item[0]])
    return Settled(tuple(sorted(start, key=position.__getitem__)), tuple(skip))


# -- contexts --------------------------------------------------------------------------------------


def conflict_text(conflict: ContextConflict) -> str:
    """What the drivers log when two dependencies wrote different values under one key."""
    return (
        f"task {conflict.task_id!r}: dependencies {conflict.loser!r} and {conflict.winner!r} wrote different "
        f"values for {conflict.key!r}; {conflict.winner!r} (declared later) wins"
    )


def final_context(
    initial: Mapping[str, JSONValue], order: Iterable[str], outputs: Mapping[str, Mapping[str, JSONValue]]
) -> dict[str, JSONValue]:
    """The execution's result: ``initial`` overlaid by every completed task's output, in workflow order."""
    merged: dict[str, JSONValue] = dict(initial)
    for tid in order:
        out = outputs.get(tid)
        if out is not None:
            merged.update(out)
    return merged


# -- the end ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionEnd:
    """How an execution whose every task has ended ends: its status and, when it failed, why."""

    status: ExecutionStatus
    error: str | None = None


def all_ended(statuses: Iterable[str]) -> bool:
    """Whether every task has ended (so the execution ends)."""
    return all(s in TERMINAL for s in statuses)


def execution_end(tasks: Sequence[tuple[str, str, str | None]]) -> ExecutionEnd:
    """The end of an execution from ``(task id, status, error)`` of every task, in workflow order.

    It was cancelled when a task was (a cancel came before every task had ended); else it failed
    when a task failed, the error naming the first failed task (in workflow order).
    """
    cancelled = [tid for tid, status, _error in tasks if status == TaskStatus.CANCELLED]
    if cancelled:
        return ExecutionEnd(
            ExecutionStatus.CANCELLED, f"cancelled before {len(cancelled)} task(s) ended: {', '.join(cancelled)}"
        )
    for tid, status, error in tasks:
        if status == TaskStatus.FAILED:
            return ExecutionEnd(ExecutionStatus.FAILED, f"task {tid!r} failed: {error}")
    return ExecutionEnd(ExecutionStatus.COMPLETED)


# -- cancel and retry ------------------------------------------------------------------------------


def cancel_reason(actor: str | None = None) -> str:
    """The error text of a task that had not ended when its execution was cancelled (by ``actor``)."""
    return "cancelled: the execution was cancelled" + (f" by {actor}" if actor else "") + " before this task ended"


def after_cancel(statuses: Mapping[str, str]) -> list[str]:
    """The tasks a cancel ends ``cancelled``, in the order given: every one that has not ended.

    Pending and ready ones are never started, running ones are stopped, retries waiting are dropped;
    completed, failed and skipped ones keep their end. The execution then ends as ``execution_end`` says
    (``cancelled`` when this list is not empty; otherwise every task had ended and the cancel came late).
    """
    return [tid for tid, status in statuses.items() if status not in TERMINAL]


#: the ends a retry of a finished execution runs again
RETRYABLE: frozenset[TaskStatus] = frozenset({TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED})


def retryable(statuses: Mapping[str, str]) -> list[str]:
    """The tasks a retry of a finished execution runs again, in the order given: failed, skipped, cancelled.

    Completed ones keep their output; the retried ones become ``pending`` (their attempt numbers go on)
    and run as their dependencies allow, as in any execution.
    """
    return [tid for tid, status in statuses.items() if status in RETRYABLE]
