"""Worker processes: one per installed package version, started on demand, reused, reaped when idle.

The host talks to a worker (``_worker_main.py``) with JSON lines: requests on the worker's stdin,
replies on a pipe of their own, so the tasks' prints reach the host's stdout and stderr untouched.
Each worker runs in a session of its own (``_sandbox``): ending it ends everything it started, and
its death is seen by its exit, not by a pipe's end of file.

A worker that dies fails only the tasks it was running (``WorkerCrashed``, transient, so retried per
the task's policy); the next request starts a fresh one. So does a worker that could not stop a
cancelled (timed-out) task: one that does not acknowledge the cancel within ``cancel_grace_s`` (its
event loop is blocked) is killed at once; one whose plain task keeps running in its thread is
retired (no new tasks; stopped once its other tasks end). A reply the host cannot read (over the
size limit, not JSON, too deep) kills the worker too, failing its tasks with the reason. Tasks that
were running beside the one a worker is killed for (a cancel it ignored, an execution's cancel) are
bystanders: they get ``WorkerStopped`` and run again on a fresh worker, failing nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import json
import logging
import os
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from cloacina_workflow import (
    Context,
    ContextError,
    Fire,
    InputError,
    PollInfo,
    Task,
    TaskError,
    TaskSpec,
    Trigger,
    TriggerSpec,
    Workflow,
)
from cloacina_workflow import _machine as m
from cloacina_workflow.limits import MAX_CONTEXT_BYTES, MAX_JSON_DEPTH, context_too_large, loads_limited

from . import _output, _tracing
from ._defaults import DEFAULT_CANCEL_GRACE_S, DEFAULT_IDLE_TIMEOUT_S, DEFAULT_LOAD_TIMEOUT_S, MAX_TASK_OUTPUT_BYTES
from ._errors import HostError
from ._sandbox import Child, spawn
from ._worker_main import ENVELOPE_BYTES

log = logging.getLogger("cloacina_host.workers")

WORKER_SCRIPT = Path(__file__).with_name("_worker_main.py")
#: Longest reply line the host reads from a worker: a context and the task's output at their limits, and
#: the reply around them.
MAX_REPLY_BYTES = MAX_CONTEXT_BYTES + MAX_TASK_OUTPUT_BYTES + ENVELOPE_BYTES


class WorkerLoadError(HostError):
    """A package's worker could not start or load its entry points in time."""

    def __init__(self, message: str, *, package_dir: Path, kind: str = "crashed", output: str = "") -> None:
        super().__init__(message)
        self.package_dir = package_dir
        #: ``"timeout"`` (loading took longer than the limit) or ``"crashed"`` (the process exited)
        self.kind = kind
        #: the end of what the package printed while loading, when it was captured
        self.output = output


class RemoteTaskError(m.RemoteError):
    """A task in its worker raised an exception that is not the kit's (``ValueError``, its own class...).

    Told as the worker told it (``describe()`` and ``str`` give ``ValueError: message``), with the worker's
    traceback; ``is_transient()`` is what ``retry_condition="transient"`` decided in the worker. The kit's
    own errors (``TaskError.*``, ``ContextError.*``) come back as themselves instead (``m.rebuild``).
    """

    def __init__(
        self, described: str, *, error_type: str, remote_traceback: str, transient: bool, task: str | None
    ) -> None:
        super().__init__(described, traceback=remote_traceback, transient=transient, task=task)
        #: the exception's class name in the worker
        self.error_type = error_type

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_remote,
            (self.described, self.error_type, self.remote_traceback, self.transient_there, self.task),
        )


def _rebuild_remote(described: str, error_type: str, tb: str, transient: bool, task: str | None) -> RemoteTaskError:
    return RemoteTaskError(described, error_type=error_type, remote_traceback=tb, transient=transient, task=task)


def task_failure(reply: Mapping[str, Any], task_id: str, where: str) -> TaskError | ContextError:
    """The error a worker's failed ``reply`` for ``task_id`` stands for, its traceback ending with ``where``.

    The kit's errors are rebuilt as their own classes (so ``except``, ``isinstance`` and the retry policy
    see what the task raised); any other exception is a ``RemoteTaskError`` told as the worker told it.
    """
    message = str(reply.get("message", ""))
    tb = str(reply.get("traceback", ""))
    if tb and not tb.endswith("\n"):
        tb += "\n"
    tb += f"({where})\n"
    task = reply.get("task") if isinstance(reply.get("task"), str) else None
    deferred = reply.get("deferred")
    if isinstance(deferred, Mapping):  # the task deferred itself: its reason and time, as raised there
        err = TaskError.Deferred(
            str(deferred.get("reason") or ""),
            seconds=_number(deferred.get("seconds")),
            until=_number(deferred.get("until")) if deferred.get("seconds") is None else None,
            task=task,
        )
        setattr(err, "__cloacina_traceback__", tb)  # noqa: B010  # where m.traceback_text finds another process's
        return err
    kit = reply.get("kit")
    if isinstance(kit, str):
        key = reply.get("key") if isinstance(reply.get("key"), str) else None
        rebuilt = m.rebuild(kit, message, traceback=tb, task=task, key=key)
        if rebuilt is not None:
            return rebuilt
    error_type = str(reply.get("error_type", "Exception"))
    return RemoteTaskError(
        str(reply.get("described") or f"{error_type}: {message}"),
        error_type=error_type,
        remote_traceback=tb,
        transient=bool(reply.get("transient")),
        task=task if task is not None else task_id,
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class TriggerPollFailed(HostError):
    """A trigger's poll raised (or returned something else than Fire or None) in its worker."""


class WorkerCrashed(TaskError):
    """The worker process died while running the task (``os._exit``, a segfault, a kill...)."""

    transient = True


class WorkerStopped(WorkerCrashed):
    """The host ended the worker because of another request (one that would not stop): this one was not at fault.

    A task that meets it runs again on a fresh worker (``remote_workflow``), up to ``BYSTANDER_RERUNS``
    times, without counting as a failed attempt; a trigger's poll is polled again at its next interval.
    """


#: how many times one attempt of a task is run again after its worker was ended for another request
BYSTANDER_RERUNS = 3


class Worker:
    """One worker process for one package directory."""

    def __init__(
        self,
        package_dir: Path,
        *,
        python: str | None = None,
        capture_output: bool = False,
        cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S,
    ) -> None:
        self.package_dir = package_dir
        self.python = python or sys.executable
        #: keep the package's prints (their last ``TAIL_BYTES``) instead of passing them to the host's output
        self.capture_output = capture_output
        self.cancel_grace_s = cancel_grace_s
        self.child: Child | None = None
        #: what loading gave (the ``ready`` message): workflows by ``package::workflow``, each
        #: ``Workflow.describe()`` with its fingerprint, distribution and entry point; problems met
        self.workflows: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        self.last_used = time.monotonic()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        #: where each request's task output goes: the attempt's buffer on the host (None: passed on)
        self._written: dict[int, _output.AttemptOutput | None] = {}
        self._cancelling: dict[int, asyncio.Task[None]] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._reply_transport: asyncio.BaseTransport | None = None
        #: why the host killed this worker (for the tasks it fails); None: it was not killed by the host
        self._killed_because: str | None = None
        #: the request it was killed for (the others were bystanders); None: all of them were at fault
        self._killed_for: int | None = None
        #: why this worker takes no new tasks; it stops once its running tasks end
        self.retired_because: str | None = None
        self._stopping: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.alive

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    @property
    def usable(self) -> bool:
        """Alive, not retired, and no cancelled task still unaccounted for: fit for a new task."""
        return self.alive and self._killed_because is None and self.retired_because is None and not self._cancelling

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    @property
    def output(self) -> str:
        """The end of the package's captured output (``capture_output``), else ``""``."""
        return self.child.tail.text() if self.child is not None and self.child.tail is not None else ""

    async def start(self, load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S) -> None:
        """Start the process and wait until it has loaded the package's entry points."""
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        try:
            self.child = await spawn(
                [self.python, str(WORKER_SCRIPT), str(self.package_dir), str(write_fd)],
                stdin=True,
                output="capture" if self.capture_output else "inherit",
                pass_fds=(write_fd,),
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        reader = asyncio.StreamReader(limit=MAX_REPLY_BYTES)
        self._reply_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb")
        )
        self._ready = loop.create_future()
        self._reader = asyncio.ensure_future(self._read_replies(reader))
        self.child.exited.add_done_callback(self._exited)
        try:
            ready = await asyncio.wait_for(asyncio.shield(self._ready), load_timeout_s)
        except asyncio.TimeoutError:
            await self.stop(grace_s=0)
            raise WorkerLoadError(
                f"Package in {self.package_dir} did not finish loading its entry points within {load_timeout_s:g}s "
                "(an import that hangs?). Fix the package's import-time code.",
                package_dir=self.package_dir,
                kind="timeout",
                output=self.output,
            ) from None
        except WorkerCrashed as exc:
            await self.stop(grace_s=0)
            raise WorkerLoadError(
                f"Worker for {self.package_dir} exited while loading the package: {exc}",
                package_dir=self.package_dir,
                kind="crashed",
                output=self.output,
            ) from exc
        except BaseException:
            await self.stop(grace_s=0)
            raise
        self.workflows = ready["workflows"]
        self.problems = ready["problems"]

    def _exited(self, exited: asyncio.Future[int]) -> None:
        """The process is gone (and its group with it): fail whatever waited on it."""
        code = exited.result()
        reason = self._killed_because or f"exited with status {code}"
        crash = WorkerCrashed(f"worker process {self.pid} for {self.package_dir.name} {reason}")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(crash)
            self._ready.exception()  # retrieved here: a start that timed out no longer awaits it
        culprit = self._killed_for
        for rid, future in self._pending.items():
            if not future.done():
                if culprit is not None and rid != culprit:
                    future.set_exception(
                        WorkerStopped(
                            f"worker process {self.pid} for {self.package_dir.name} was stopped by the host because "
                            f"of another request ({self._killed_because})"
                        )
                    )
                else:
                    future.set_exception(crash)
                future.exception()  # retrieved here: a cancelled request's future may have no one awaiting it
        self._pending.clear()
        self._written.clear()
        if self._reply_transport is not None:  # a grandchild may hold the pipe open: stop reading it
            self._reply_transport.close()

    def kill(self, reason: str, *, for_request: int | None = None) -> None:
        """Kill the worker and its group now; the tasks it runs fail with ``WorkerCrashed`` naming ``reason``.

        ``for_request``: the one request it is killed for; the others it was running get ``WorkerStopped``.
        """
        if self.child is not None and self.child.alive:
            if self._killed_because is None:
                self._killed_because, self._killed_for = reason, for_request
            log.warning("worker %s for %s %s", self.pid, self.package_dir.name, reason)
            self.child.kill()

    def retire(self, reason: str) -> None:
        """Take no new tasks; stop once the running ones end."""
        if self.retired_because is None:
            self.retired_because = reason
            log.warning("worker %s for %s is retired: %s", self.pid, self.package_dir.name, reason)
        self._stop_when_idle()

    def _stop_when_idle(self) -> None:
        if self.retired_because is not None and not self._pending and self._stopping is None:
            self._stopping = asyncio.ensure_future(self.stop())

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                message = loads_limited(
                    line, "a reply from the worker", max_bytes=MAX_REPLY_BYTES, max_depth=MAX_JSON_DEPTH + 2
                )
                if message.get("op") == "ready":
                    if self._ready is not None and not self._ready.done():
                        self._ready.set_result(message)
                    continue
                if message.get("op") == "output":  # what a running task wrote so far
                    _output.absorb(self._written.get(message["id"]), *_output.from_wire(message))
                    continue
                _output.absorb(self._written.pop(message["id"], None), *_output.from_wire(message))
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
        except Exception as exc:  # noqa: BLE001  # oversized, not JSON, too deep...: this worker cannot be trusted
            self.kill(f"was stopped: it sent a reply the host cannot read ({type(exc).__name__}: {str(exc)[:500]})")
            return
        if self.child is not None and self.child.alive:  # the pipe closed but the process lives on: wait, then kill
            try:
                await asyncio.wait_for(asyncio.shield(self.child.exited), self.cancel_grace_s)
            except asyncio.TimeoutError:
                self.kill("was stopped: it closed its reply pipe but kept running")

    async def settle(self) -> bool:
        """Wait until every cancelled task is accounted for (each within ``cancel_grace_s``); ``usable`` then."""
        while self._cancelling:
            await asyncio.wait(list(self._cancelling.values()))
        return self.usable

    async def run_task(self, workflow_key: str, task_id: str, context: Mapping[str, Any]) -> dict[str, Any]:
        """Run one task on ``context``; return the task's output context or raise its error."""
        if self.child is None or not self.child.alive:
            raise WorkerCrashed(f"worker for {self.package_dir.name} is not running", task=task_id)
        body = json.dumps(context, separators=(",", ":"))
        if len(body) > MAX_CONTEXT_BYTES:  # ASCII (ensure_ascii): characters are bytes
            raise context_too_large(f"the context given to task {task_id!r}", len(body))
        rid = next(self._ids)
        traced = _tracing.request_context()  # the attempt's trace context, when traces are on
        trace = "" if traced is None else f'"trace":{json.dumps(traced)},'
        line = (
            f'{{"op":"run","id":{rid},"workflow":{json.dumps(workflow_key)},'
            f'"task":{json.dumps(task_id)},{trace}"context":{body}}}\n'
        )
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self._written[rid] = _output.current()
        self.last_used = time.monotonic()
        try:
            self.child.write(line.encode())
            await self.child.drain()
            reply = await future
        except asyncio.CancelledError:
            stop = STOP_REQUEST.get()
            if stop is not None and stop.kill_reason is not None:  # the execution is cancelled: end the worker
                self.kill(stop.kill_reason, for_request=rid)
            else:  # a timeout: the worker is asked to cancel it
                self._cancel(rid, task_id)
            raise
        except (BrokenPipeError, ConnectionResetError) as exc:
            self._pending.pop(rid, None)
            raise WorkerCrashed(f"worker for {self.package_dir.name} is gone: {exc}", task=task_id) from exc
        except WorkerCrashed as exc:
            raise type(exc)(str(exc), task=task_id) from None
        finally:
            self.last_used = time.monotonic()
            self._stop_when_idle()
        if reply["ok"]:
            return reply["context"]  # type: ignore[no-any-return]
        raise task_failure(reply, task_id, f"raised in worker process {self.pid} for {self.package_dir}")

    async def poll_trigger(self, workflow_key: str, trigger: str, last_fire_at: float | None) -> dict[str, Any] | None:
        """Poll ``trigger`` of a loaded workflow in this worker: the context it fires with, or None (not now).

        Cancelling the call (a poll's timeout) cancels the poll in the worker, as for a task.
        """
        what = f"trigger {trigger!r}"
        if self.child is None or not self.child.alive:
            raise WorkerCrashed(f"worker for {self.package_dir.name} is not running", task=what)
        rid = next(self._ids)
        request = {"op": "poll", "id": rid, "workflow": workflow_key, "trigger": trigger, "last_fire_at": last_fire_at}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self.last_used = time.monotonic()
        try:
            self.child.write((json.dumps(request, separators=(",", ":")) + "\n").encode())
            await self.child.drain()
            reply = await future
        except asyncio.CancelledError:
            self._cancel(rid, what)
            raise
        except (BrokenPipeError, ConnectionResetError) as exc:
            self._pending.pop(rid, None)
            raise WorkerCrashed(f"worker for {self.package_dir.name} is gone: {exc}", task=what) from exc
        finally:
            self.last_used = time.monotonic()
            self._stop_when_idle()
        if reply["ok"]:
            fired = reply.get("fire")
            return dict(fired) if isinstance(fired, dict) else None
        raise TriggerPollFailed(f"{reply.get('described') or reply.get('message')} (in worker process {self.pid})")

    async def check_input(self, workflow_key: str, context: Mapping[str, Any]) -> None:
        """Check ``context`` against the workflow's input model, which lives here; ``InputError`` if it does not fit."""
        if self.child is None or not self.child.alive:
            raise WorkerCrashed(f"worker for {self.package_dir.name} is not running")
        rid = next(self._ids)
        body = json.dumps({"op": "check_input", "id": rid, "workflow": workflow_key, "context": context})
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self.last_used = time.monotonic()
        try:
            self.child.write(body.encode() + b"\n")
            await self.child.drain()
            reply = await future
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise WorkerCrashed(f"worker for {self.package_dir.name} is gone: {exc}") from exc
        finally:
            self._pending.pop(rid, None)
            self.last_used = time.monotonic()
            self._stop_when_idle()
        if not reply.get("ok"):
            problems = tuple(str(p) for p in reply.get("problems", ()))
            raise InputError(str(reply.get("message")), workflow=workflow_key.split("::")[-1], problems=problems)

    def _cancel(self, rid: int, task_id: str) -> None:
        """Ask the worker to cancel request ``rid``, and watch that it does (never blocks)."""
        future = self._pending.get(rid)
        if future is None or self.child is None or (future.done() and not future.cancelled()):  # answered already
            self._pending.pop(rid, None)
            return
        if future.cancelled():  # the caller's cancellation cancelled the future it awaited: wait on a new one
            future = self._pending[rid] = asyncio.get_running_loop().create_future()
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            self.child.write(b'{"op":"cancel","id":%d}\n' % rid)
        self._cancelling[rid] = asyncio.ensure_future(self._watch_cancel(rid, task_id, future))

    async def _watch_cancel(self, rid: int, task_id: str, future: asyncio.Future[dict[str, Any]]) -> None:
        try:
            reply = await asyncio.wait_for(asyncio.shield(future), self.cancel_grace_s)
        except asyncio.TimeoutError:
            self.kill(
                f"was stopped: task {task_id!r} did not stop within {self.cancel_grace_s:g} s of being cancelled "
                "(it blocks the worker's event loop, e.g. time.sleep in an async task?)",
                for_request=rid,
            )
        except Exception:  # noqa: BLE001  # the worker died meanwhile: its exit says why
            pass
        else:
            if reply.get("cancelled") and not reply.get("stopped", True):
                self.retire(f"task {task_id!r} was cancelled but keeps running in its thread (a plain task)")
        finally:
            self._pending.pop(rid, None)
            self._cancelling.pop(rid, None)
            self._stop_when_idle()

    async def stop(self, grace_s: float = 2.0) -> None:
        """Close the worker's input, give it ``grace_s`` to exit, then kill its group."""
        if self.child is not None:
            await self.child.end(grace_s)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        for watch in list(self._cancelling.values()):
            watch.cancel()


class WorkerPool:
    """Workers by package directory: started on demand, replaced when dead or unfit, stopped when idle."""

    def __init__(
        self,
        *,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
        cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.load_timeout_s = load_timeout_s
        self.cancel_grace_s = cancel_grace_s
        self._workers: dict[Path, Worker] = {}
        self._retired: set[Worker] = set()
        self._starting: dict[Path, asyncio.Task[Worker]] = {}

    def running(self, package_dir: Path) -> Worker | None:
        """The running worker for ``package_dir`` if it can take a task now, else None (``get`` it)."""
        worker = self._workers.get(package_dir)
        return worker if worker is not None and worker.usable else None

    async def get(self, package_dir: Path) -> Worker:
        """The running worker for ``package_dir``, starting one if there is none (or it is dead or unfit)."""
        worker = self._workers.get(package_dir)
        if worker is not None:
            if worker.usable:
                return worker
            if await worker.settle():  # a cancelled task: wait (bounded) to learn whether it stopped
                return worker
            if self._workers.get(package_dir) is worker:
                del self._workers[package_dir]
                if worker.alive:
                    worker.retire(worker.retired_because or "replaced by a fresh worker")
                    self._retired.add(worker)
        # the start is a task of its own that every caller shares: a caller cancelled while it waits
        # (a trigger poll's timeout) leaves the start, and the other callers, to go on
        starting = self._starting.get(package_dir)
        if starting is None:
            starting = self._starting[package_dir] = asyncio.ensure_future(self._start(package_dir))
            starting.add_done_callback(functools.partial(self._started, package_dir))
        try:
            return await asyncio.shield(starting)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            cancelling = getattr(current, "cancelling", None)  # 3.11+; on 3.10 the caller's own is assumed
            if starting.cancelled() and cancelling is not None and not cancelling():  # close() ended the start
                raise WorkerCrashed(
                    f"the worker for {package_dir.name} was not started: the host closed its package workers"
                ) from None
            raise

    async def _start(self, package_dir: Path) -> Worker:
        worker = Worker(package_dir, cancel_grace_s=self.cancel_grace_s)
        await worker.start(self.load_timeout_s)
        self._workers[package_dir] = worker
        return worker

    def _started(self, package_dir: Path, starting: asyncio.Future[Worker]) -> None:
        if self._starting.get(package_dir) is starting:
            del self._starting[package_dir]
        if not starting.cancelled():
            starting.exception()  # retrieved: each caller that waited re-raises it itself

    async def reap_idle(self) -> int:
        """Stop workers idle for longer than ``idle_timeout_s``; return how many were stopped."""
        now = time.monotonic()
        self._retired = {w for w in self._retired if w.alive}
        idle = [
            w
            for w in self._workers.values()
            if (not w.busy and (now - w.last_used) > self.idle_timeout_s) or not w.alive
        ]
        for worker in idle:
            del self._workers[worker.package_dir]
            await worker.stop()
        return len(idle)

    def workers(self) -> list[Worker]:
        return list(self._workers.values())

    async def close(self) -> None:
        starting, self._starting = list(self._starting.values()), {}
        for start in starting:  # a worker still loading is stopped by its start's cancellation
            start.cancel()
        await asyncio.gather(*starting, return_exceptions=True)
        workers, self._workers = [*self._workers.values(), *self._retired], {}
        self._retired = set()
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)


class StopRequest:
    """Set by the engine around an attempt: when ``kill_reason`` is set and the attempt is cancelled, a
    registered package's task is stopped by ending its worker process (a cancel of the execution), not by
    asking the worker to cancel it (a timeout). One per execution, shared by its attempts' contexts."""

    __slots__ = ("kill_reason",)

    def __init__(self) -> None:
        self.kill_reason: str | None = None


#: the ``StopRequest`` of the attempt running in this context (none outside the engine)
STOP_REQUEST: contextvars.ContextVar[StopRequest | None] = contextvars.ContextVar("cloacina_stop", default=None)


class PoolLike(Protocol):
    """What ``remote_workflow`` needs of a pool: the running worker for a package directory."""

    async def get(self, package_dir: Path) -> Worker: ...


def remote_workflow(pool: PoolLike, package_dir: Path, key: str, described: Mapping[str, Any]) -> Workflow:
    """A ``Workflow`` whose tasks run in ``package_dir``'s worker; ``described`` is ``Workflow.describe()``."""

    def make_task(spec: TaskSpec) -> Task:
        async def run_remotely(context: Context) -> None:
            for rerun in itertools.count():
                with _output.outside():  # a worker started now (its reader task) belongs to no attempt
                    worker = await pool.get(package_dir)
                try:
                    # the context's values were checked as they were set: sent as they are, not copied
                    output = await worker.run_task(key, spec.id, {name: context.get(name) for name in context})
                    break
                except WorkerStopped as exc:  # ended for another task's sake: not this attempt's failure
                    if rerun >= BYSTANDER_RERUNS:
                        raise
                    log.warning("task %s of %s runs again on a fresh worker: %s", spec.id, key, exc)
            for name in [k for k in context if k not in output]:
                context.remove(name)
            for name, value in output.items():
                context.set(name, value)

        run_remotely.__name__ = run_remotely.__qualname__ = spec.id.replace("-", "_").replace(".", "_")
        return Task(spec, run_remotely)

    def make_trigger(spec: TriggerSpec) -> Trigger:
        async def poll_remotely(info: PollInfo) -> Fire | None:
            with _output.outside():
                worker = await pool.get(package_dir)
            fired = await worker.poll_trigger(key, spec.name, info.last_fire_at)
            return None if fired is None else Fire(fired)

        return Trigger(spec, poll_remotely)

    fields = set(TaskSpec.model_fields)
    tasks = [make_task(TaskSpec(**{k: v for k, v in t.items() if k in fields})) for t in described["tasks"]]
    workflow = Workflow(
        described["name"],
        tasks,
        package=described.get("package") or key.split("::")[0],
        description=described.get("description"),
        author=described.get("author"),
        triggers=[make_trigger(TriggerSpec.model_validate(t)) for t in described.get("triggers", ())],
        input_schema=described.get("input_schema"),  # its model lives in the worker: ``check_remote_input``
    )
    if workflow.input_schema is not None:

        async def check(context: Mapping[str, Any]) -> None:
            with _output.outside():
                worker = await pool.get(package_dir)
            await worker.check_input(key, context)

        _REMOTE_INPUT_CHECKS[workflow] = check
    return workflow


#: how a registered workflow's input is checked: by its model, in its package's worker process
_REMOTE_INPUT_CHECKS: weakref.WeakKeyDictionary[Workflow, Callable[[Mapping[str, Any]], Awaitable[None]]] = (
    weakref.WeakKeyDictionary()
)


async def check_remote_input(workflow: Workflow, context: Mapping[str, Any]) -> None:
    """Check ``context`` against the input model of a registered workflow, in its package's worker process.

    The host does not import a package's code, and a JSON Schema alone would miss what the model checks
    beyond it (validators, formats): the worker that runs its tasks validates with the model itself, so a
    registered workflow refuses exactly the contexts the same workflow refuses in-process.
    """
    check = _REMOTE_INPUT_CHECKS.get(workflow)
    if check is not None:
        await check(context)
