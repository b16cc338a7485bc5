"""Worker processes: one per installed package version, started on demand, reused, reaped when idle.

The host talks to a worker (``_worker_main.py``) with JSON lines: requests on the worker's stdin,
replies on a pipe of their own, so the tasks' prints reach the host's stdout and stderr untouched.
A worker that dies fails only the tasks it was running (``WorkerCrashed``, transient, so retried per
the task's policy); the next request starts a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from cloacina_workflow import Context, Task, TaskError, TaskSpec, Workflow

from ._errors import HostError

log = logging.getLogger("cloacina_host.workers")

WORKER_SCRIPT = Path(__file__).with_name("_worker_main.py")
DEFAULT_LOAD_TIMEOUT_S = 30.0
DEFAULT_IDLE_TIMEOUT_S = 300.0


class WorkerLoadError(HostError):
    """A package's worker could not start or load its entry points in time."""

    def __init__(self, message: str, *, package_dir: Path) -> None:
        super().__init__(message)
        self.package_dir = package_dir


class RemoteTaskError(TaskError):
    """A task failed inside its worker; ``error_type`` and ``remote_traceback`` are the worker's."""

    def __init__(self, message: str, *, error_type: str, remote_traceback: str, transient: bool, task: str) -> None:
        super().__init__(f"{error_type}: {message}", task=task)
        self.error_type = error_type
        self.remote_traceback = remote_traceback
        self._transient = transient

    def is_transient(self) -> bool:
        return self._transient

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_remote,
            (self.message, self.error_type, self.remote_traceback, self._transient, self.task or ""),
        )


def _rebuild_remote(message: str, error_type: str, tb: str, transient: bool, task: str) -> RemoteTaskError:
    err = RemoteTaskError("", error_type=error_type, remote_traceback=tb, transient=transient, task=task)
    err.message = message
    err.args = (message,)
    return err


class WorkerCrashed(TaskError):
    """The worker process died while running the task (``os._exit``, a segfault, a kill...)."""

    transient = True


class Worker:
    """One worker process for one package directory."""

    def __init__(self, package_dir: Path, *, python: str | None = None, stdout: int | None = None) -> None:
        self.package_dir = package_dir
        self.python = python or sys.executable
        #: where the package's prints go (a file descriptor); None: the host's stdout
        self.stdout = stdout
        self.process: asyncio.subprocess.Process | None = None
        self.workflows: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        self.last_used = time.monotonic()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    async def start(self, load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S) -> None:
        """Start the process and wait until it has loaded the package's entry points."""
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.python,
                str(WORKER_SCRIPT),
                str(self.package_dir),
                str(write_fd),
                stdin=asyncio.subprocess.PIPE,
                stdout=self.stdout,
                pass_fds=(write_fd,),
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            os.close(write_fd)
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb"))
        self._ready = loop.create_future()
        self._reader = asyncio.ensure_future(self._read_replies(reader))
        try:
            ready = await asyncio.wait_for(asyncio.shield(self._ready), load_timeout_s)
        except asyncio.TimeoutError:
            await self.stop()
            raise WorkerLoadError(
                f"Package in {self.package_dir} did not finish loading its entry points within {load_timeout_s:g}s "
                "(an import that hangs?). Fix the package's import-time code.",
                package_dir=self.package_dir,
            ) from None
        except WorkerCrashed as exc:
            raise WorkerLoadError(
                f"Worker for {self.package_dir} exited while loading the package: {exc}", package_dir=self.package_dir
            ) from exc
        self.workflows = ready["workflows"]
        self.problems = ready["problems"]

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                message = json.loads(line)
                if message.get("op") == "ready":
                    if self._ready is not None and not self._ready.done():
                        self._ready.set_result(message)
                    continue
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
        finally:
            code = await self.process.wait() if self.process is not None else None
            crash = WorkerCrashed(f"worker process {self.pid} for {self.package_dir.name} exited with status {code}")
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(crash)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(crash)
            self._pending.clear()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def _send(self, message: Mapping[str, Any]) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        async with self._write_lock:
            self.process.stdin.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
            await self.process.stdin.drain()

    async def run_task(self, workflow_key: str, task_id: str, context: Mapping[str, Any]) -> dict[str, Any]:
        """Run one task on ``context``; return the task's output context or raise its error."""
        if not self.alive:
            raise WorkerCrashed(f"worker for {self.package_dir.name} is not running", task=task_id)
        rid = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self.last_used = time.monotonic()
        try:
            await self._send({"op": "run", "id": rid, "workflow": workflow_key, "task": task_id, "context": context})
            reply = await future
        except asyncio.CancelledError:
            self._pending.pop(rid, None)
            with contextlib.suppress(Exception):
                await self._send({"op": "cancel", "id": rid})
            raise
        except (BrokenPipeError, ConnectionResetError) as exc:
            self._pending.pop(rid, None)
            raise WorkerCrashed(f"worker for {self.package_dir.name} is gone: {exc}", task=task_id) from exc
        except WorkerCrashed as exc:
            raise WorkerCrashed(str(exc), task=task_id) from None
        finally:
            self.last_used = time.monotonic()
        if reply["ok"]:
            return reply["context"]  # type: ignore[no-any-return]
        raise RemoteTaskError(
            reply["message"],
            error_type=reply["error_type"],
            remote_traceback=reply.get("traceback", ""),
            transient=bool(reply.get("transient")),
            task=task_id,
        )

    async def stop(self, grace_s: float = 2.0) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), grace_s)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


class WorkerPool:
    """Workers by package directory: started on demand, replaced when dead, stopped when idle."""

    def __init__(
        self,
        *,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.load_timeout_s = load_timeout_s
        self._workers: dict[Path, Worker] = {}
        self._starting: dict[Path, asyncio.Future[Worker]] = {}

    async def get(self, package_dir: Path) -> Worker:
        """The running worker for ``package_dir``, starting one if there is none (or it died)."""
        worker = self._workers.get(package_dir)
        if worker is not None and worker.alive:
            return worker
        if package_dir in self._starting:  # another caller is starting it: share the result
            return await asyncio.shield(self._starting[package_dir])
        future: asyncio.Future[Worker] = asyncio.get_running_loop().create_future()
        self._starting[package_dir] = future
        try:
            worker = Worker(package_dir)
            await worker.start(self.load_timeout_s)
            self._workers[package_dir] = worker
            future.set_result(worker)
            return worker
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: callers that share it re-raise it themselves
            raise
        finally:
            del self._starting[package_dir]

    async def reap_idle(self) -> int:
        """Stop workers idle for longer than ``idle_timeout_s``; return how many were stopped."""
        now = time.monotonic()
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
        workers, self._workers = list(self._workers.values()), {}
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)


class PoolLike(Protocol):
    """What ``remote_workflow`` needs of a pool: the running worker for a package directory."""

    async def get(self, package_dir: Path) -> Worker: ...


def remote_workflow(pool: PoolLike, package_dir: Path, key: str, described: Mapping[str, Any]) -> Workflow:
    """A ``Workflow`` whose tasks run in ``package_dir``'s worker; ``described`` is ``Workflow.describe()``."""

    def make_task(spec: TaskSpec) -> Task:
        async def run_remotely(context: Context) -> None:
            worker = await pool.get(package_dir)
            output = await worker.run_task(key, spec.id, context.to_dict())
            for name in [k for k in context if k not in output]:
                context.remove(name)
            for name, value in output.items():
                context.set(name, value)

        run_remotely.__name__ = run_remotely.__qualname__ = spec.id.replace("-", "_").replace(".", "_")
        return Task(spec, run_remotely)

    fields = set(TaskSpec.model_fields)
    tasks = [make_task(TaskSpec(**{k: v for k, v in t.items() if k in fields})) for t in described["tasks"]]
    return Workflow(
        described["name"],
        tasks,
        package=described.get("package") or key.split("::")[0],
        description=described.get("description"),
        author=described.get("author"),
    )
