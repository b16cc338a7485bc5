"""Running task code so that nothing it does escapes the error path or keeps the host from exiting.

A task may raise anything. ``Exception`` subclasses fail the attempt as they are; any other
``BaseException`` (``SystemExit``, ``KeyboardInterrupt``, the task's own ``asyncio.CancelledError``,
a custom subclass) is turned into ``TaskEscapedError`` where it is raised (in the task's thread or
its coroutine), before it can reach the event loop or a future that would re-raise it there. The
engine's own cancellation (shutdown, a lost lease) still cancels the task: it arrives at the caller
of ``call_task``, never from inside the task.

Plain tasks run on ``DaemonThreadExecutor``: its threads never hold up the interpreter's exit, so a
task stuck past its timeout is abandoned for good instead of being joined at exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

from cloacina_workflow import Task
from cloacina_workflow._machine import TaskEscapedError, timeout_error
from cloacina_workflow.limits import MAX_CONTEXT_BYTES, context_too_large

from .. import _output


def _plain(task: Task, context: Any, begin: Callable[[], None] | None = None) -> None:
    """Run a plain task in its thread; anything but an ``Exception`` becomes ``TaskEscapedError`` here.

    ``begin`` is called first, in the thread: the task's timeout starts then, not when it was queued.
    """
    if begin is not None:
        begin()
    try:
        task.function(context)
    except Exception:
        raise
    except BaseException as exc:  # SystemExit, KeyboardInterrupt... in the task's thread
        raise TaskEscapedError(task.id, exc) from exc


async def _coroutine(task: Task, context: Any) -> None:
    try:
        await task.function(context)  # type: ignore[misc]
    except Exception:
        raise
    except asyncio.CancelledError:
        raise  # the engine's or the task's own: call_task tells them apart
    except BaseException as exc:  # caught inside the task, before asyncio re-raises it on the loop
        raise TaskEscapedError(task.id, exc) from exc


async def _coroutine_inline(task: Task, context: Any) -> None:
    """``_coroutine`` in the caller's own task (no task of its own: the hot path), Python 3.11+.

    A ``CancelledError`` is the engine's when the current task has a cancellation requested
    (``Task.cancelling()``); otherwise the task raised it itself.
    """
    try:
        await task.function(context)  # type: ignore[misc]
    except Exception:
        raise
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is None or current.cancelling():  # type: ignore[attr-defined,unused-ignore]
            raise
        raise TaskEscapedError(task.id, asyncio.CancelledError()) from None
    except BaseException as exc:  # caught inside the task, before asyncio re-raises it on the loop
        raise TaskEscapedError(task.id, exc) from exc


#: ``Task.cancelling()`` tells the engine's cancellation from a task's own ``CancelledError`` in place
_INLINE = sys.version_info >= (3, 11)


class TaskSlot:
    """An attempt's place under a concurrency limit (``max_concurrent_tasks``, a worker's ``concurrency``).

    Held from before the task's code starts until that code has really returned: ``done()`` gives
    it back at the end of the attempt, unless ``keep_until`` handed it to a plain task's thread that
    was abandoned (a timeout, a cancellation) and still runs; then it is given back (on the event
    loop) when that thread returns. So an abandoned thread keeps counting against the limit.
    """

    __slots__ = ("_given_back", "_kept", "_release")

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._kept = False
        self._given_back = False

    def __enter__(self) -> TaskSlot:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.done()

    @property
    def kept(self) -> bool:
        """Whether an abandoned plain task's thread holds the place past the attempt's end."""
        return self._kept

    def done(self) -> None:
        """The attempt is over: give the place back now, unless an abandoned thread still holds it."""
        if not self._kept:
            self._give_back()

    def keep_until(self, future: concurrent.futures.Future[Any]) -> None:
        """Hold the place until ``future`` (an abandoned plain task's thread) is done."""
        self._kept = True
        loop = asyncio.get_running_loop()

        def finished(_future: concurrent.futures.Future[Any]) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nothing is limited any more
                loop.call_soon_threadsafe(self._give_back)

        future.add_done_callback(finished)

    def _give_back(self) -> None:
        if not self._given_back:
            self._given_back = True
            self._release()


def _set_started(started: asyncio.Future[None]) -> None:
    if not started.done():
        started.set_result(None)


async def call_task(
    task: Task,
    context: Any,
    timeout: float | None,
    executor: concurrent.futures.Executor,
    slot: TaskSlot | None = None,
    output: _output.AttemptOutput | None = None,
) -> None:
    """One run of ``task``: an async one on the loop, a plain one on ``executor``, within ``timeout``.

    What the task writes to stdout and stderr, and its log records, go to ``output`` (``_output``):
    the coroutine, or the thread's copy of this context, runs with it as the current attempt's.

    A timed-out attempt raises ``TaskError.Timeout`` (the same text in every driver); a plain
    function's thread cannot be stopped, so it finishes unobserved (a daemon thread) and keeps
    ``slot`` until it does. The timeout counts from when the task's code starts (a plain
    task's thread may start later than asked). A task that raises a ``BaseException`` other than an
    ``Exception`` raises ``TaskEscapedError``.
    """
    if output is None:
        await _call_task(task, context, timeout, executor, slot)
        return
    token = _output.enter(output)
    try:
        await _call_task(task, context, timeout, executor, slot)
    finally:
        _output.leave(token)


async def _call_task(
    task: Task,
    context: Any,
    timeout: float | None,
    executor: concurrent.futures.Executor,
    slot: TaskSlot | None,
) -> None:
    fut: asyncio.Future[Any]
    thread: concurrent.futures.Future[Any] | None = None
    started: asyncio.Future[None] | None = None
    if task.is_async:
        if timeout is None and _INLINE:
            await _coroutine_inline(task, context)
            return
        # a task of its own: its own CancelledError leaves it cancelled, which the engine never did
        fut = asyncio.ensure_future(_coroutine(task, context))
    else:
        loop = asyncio.get_running_loop()
        begin: Callable[[], None] | None = None
        if timeout is not None:
            started = loop.create_future()

            def begin() -> None:
                loop.call_soon_threadsafe(_set_started, started)

        thread = executor.submit(contextvars.copy_context().run, _plain, task, context, begin)
        fut = asyncio.wrap_future(thread, loop=loop)
    try:
        if started is not None:  # waiting for a thread is not the task's time
            await asyncio.wait({fut, started}, return_when=asyncio.FIRST_COMPLETED)
        # asyncio.wait never re-raises what fut holds: a cancelled fut is then the task's own doing
        # (an async task raising CancelledError itself), and the engine's cancellation of this
        # attempt arrives here as the waiter's own CancelledError
        done, _ = await asyncio.wait({fut}, timeout=timeout)
    except asyncio.CancelledError:  # the engine cancels this attempt (shutdown, a lost lease)
        _abandon(fut, thread, slot)
        raise
    if not done:
        _abandon(fut, thread, slot)
        assert timeout is not None  # only a limited wait can end undone
        raise timeout_error(task.id, timeout)
    if fut.cancelled():  # nobody cancelled it from outside: the task raised CancelledError itself
        raise TaskEscapedError(task.id, asyncio.CancelledError())
    fut.result()


def _abandon(fut: asyncio.Future[Any], thread: concurrent.futures.Future[Any] | None, slot: TaskSlot | None) -> None:
    """Stop waiting for a task: cancel its coroutine (or its thread, if not started yet).

    A thread that runs on keeps ``slot`` until it returns.
    """
    fut.cancel()
    if thread is not None and slot is not None:
        slot.keep_until(thread)


def check_output_size(text: str, task_id: str) -> None:
    """Refuse a task's output context (as the compact JSON the engine stores) over ``MAX_CONTEXT_BYTES``."""
    if len(text) * 4 <= MAX_CONTEXT_BYTES:  # no UTF-8 character takes more than 4 bytes: the common case
        return
    size = len(text) if len(text) > MAX_CONTEXT_BYTES else len(text.encode())
    if size > MAX_CONTEXT_BYTES:
        raise context_too_large(f"the output context of task {task_id!r}", size)


_WorkItem = tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]]


class DaemonThreadExecutor(concurrent.futures.Executor):
    """A thread pool whose threads are daemons: never joined at exit, so an abandoned task cannot block it.

    A thread is started whenever no idle one is free: the engine's semaphore bounds the tasks
    running at once, and a thread stuck in an abandoned task does not take a slot from the others.
    """

    def __init__(self, thread_name_prefix: str = "cloacina-task") -> None:
        self._prefix = thread_name_prefix
        self._queue: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        call = fn if not kwargs else (lambda *a: fn(*a, **kwargs))
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new work after shutdown")
            if self._idle > 0:
                self._idle -= 1
            else:
                self._threads += 1
                threading.Thread(target=self._work, name=f"{self._prefix}-{self._threads}", daemon=True).start()
            self._queue.put((future, call, args))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as exc:  # noqa: BLE001  # handed to whoever waits on the future
                    future.set_exception(exc)
                    del exc
                else:
                    future.set_result(result)
                    del result
            del future, fn, args
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the idle threads; busy ones end with their work (``wait`` is ignored: nothing is joined)."""
        with self._lock:
            self._shutdown = True
            threads = self._threads
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in range(threads):
            self._queue.put(None)
