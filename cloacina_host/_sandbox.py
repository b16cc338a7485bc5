"""Child processes that run package code: own session, bounded output, deadline, whole group ended.

Every process that runs a package's code (a registered package's worker, the packaging-time read
of a wheel's task graph) is started here, the same way:

- in a new session (``start_new_session``), so its process group holds everything it starts;
- its exit watched by a thread blocked in ``waitid(WNOWAIT)``: the moment the child exits, its whole
  group is killed (before the child is reaped, so the group's id cannot be reused meanwhile), then
  the child is reaped. Exit is seen by the process ending, never by a pipe's end of file, which a
  grandchild holding the descriptor could keep open for ever;
- its output either inherited (a worker's tasks print to the host's stdout and stderr) or captured
  through a pipe of which only the last ``TAIL_BYTES`` are kept, whatever the child writes.

A descendant that starts a session of its own (``setsid``) leaves the group, and so is beyond reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

#: How much of a child's captured output is kept (the end of it), for error messages.
TAIL_BYTES = 64 * 1024
#: How long to wait for a captured output pipe's end of file once the child's group is ended.
_DRAIN_S = 1.0

T = TypeVar("T")


class OutputTail:
    """The last ``limit`` bytes written to it, and how many were written in all."""

    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self.limit = limit
        self.total = 0
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if len(data) >= self.limit:
            self._buffer[:] = data[-self.limit :]
            return
        self._buffer += data
        excess = len(self._buffer) - self.limit
        if excess > 0:
            del self._buffer[:excess]

    def text(self) -> str:
        body = self._buffer.decode("utf-8", "replace").strip()
        dropped = self.total - len(self._buffer)
        return f"[{dropped:,} bytes before this left out]\n{body}" if dropped > 0 else body


#: How much of a captured output an error message quotes (its end).
QUOTED_CHARS = 4000


def quote_output(output: str, limit: int = QUOTED_CHARS) -> str:
    """`` Its last output: ...`` (the last ``limit`` characters), or ``""`` when there was none."""
    text = output.strip()
    if not text:
        return ""
    return f" Its last output: {'...' + text[-limit:] if len(text) > limit else text}"


def kill_group(pgid: int) -> None:
    """SIGKILL every process of the group ``pgid`` (nothing if there is none left)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class _TailProtocol(asyncio.Protocol):
    def __init__(self, tail: OutputTail, done: asyncio.Future[None]) -> None:
        self.tail = tail
        self.done = done

    def data_received(self, data: bytes) -> None:
        self.tail.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _WriterProtocol(asyncio.Protocol):
    """The write side of a pipe with ``drain`` (flow control) and a flag once the reader is gone."""

    def __init__(self) -> None:
        self.closed = False
        self._resume: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        if self._resume is None:
            self._resume = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)
        self._resume = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.resume_writing()

    async def drain(self) -> None:
        if self._resume is not None:
            await self._resume
        if self.closed:
            raise ConnectionResetError("the child's input pipe is closed")


@dataclass
class Child:
    """A running child process in its own session; ``exited`` resolves to its exit status."""

    process: subprocess.Popen[bytes]
    exited: asyncio.Future[int]
    tail: OutputTail | None = None
    _stdin: asyncio.WriteTransport | None = None
    _writer: _WriterProtocol | None = None
    _output: asyncio.Future[None] | None = None
    _output_transport: asyncio.BaseTransport | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    def kill(self) -> None:
        """End the child and everything in its group, now."""
        if self.alive:
            kill_group(self.pid)

    def write(self, data: bytes) -> None:
        """Queue ``data`` on the child's stdin (never blocks); ``ConnectionResetError`` once it is closed."""
        if self._stdin is None or self._writer is None or self._writer.closed or self._stdin.is_closing():
            raise ConnectionResetError("the child's input pipe is closed")
        self._stdin.write(data)

    async def drain(self) -> None:
        if self._writer is not None:
            await self._writer.drain()

    def close_stdin(self) -> None:
        if self._stdin is not None:
            self._stdin.close()

    async def end(self, grace_s: float) -> int:
        """Close stdin, give the child ``grace_s`` to exit, then kill its group; its exit status."""
        self.close_stdin()
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), grace_s)
        except asyncio.TimeoutError:
            self.kill()
        code = await self.exited
        await self.output_closed()
        return code

    async def output_closed(self) -> None:
        """Wait (briefly: the group is dead by now) for the captured output's end of file, then close it."""
        if self._output is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._output), _DRAIN_S)
        if self._output_transport is not None:
            self._output_transport.close()


def _watch(process: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop, exited: asyncio.Future[int]) -> None:
    """Thread: wait for the child to exit (not reaping it), kill its group, reap it, report the status."""
    waitid = getattr(os, "waitid", None)
    if waitid is not None:
        with contextlib.suppress(ChildProcessError, OSError):
            waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        kill_group(process.pid)
        code = process.wait()
    else:  # no waitid (some platforms): reap first, then end what is left of the group
        code = process.wait()
        kill_group(process.pid)

    def report() -> None:
        if not exited.done():
            exited.set_result(code)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(report)


async def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None = None,
    pass_fds: Sequence[int] = (),
    stdin: bool = False,
    output: Literal["inherit", "capture"] = "inherit",
    tail_bytes: int = TAIL_BYTES,
) -> Child:
    """Start ``argv`` in a session of its own; ``stdin``: give it a pipe (``Child.write``), else /dev/null.

    ``output="capture"`` sends its stdout and stderr to a pipe of which the last ``tail_bytes`` are
    kept (``Child.tail``); ``"inherit"`` leaves them the host's.
    """
    loop = asyncio.get_running_loop()
    read_fd = write_fd = -1
    if output == "capture":
        read_fd, write_fd = os.pipe()
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=write_fd if output == "capture" else None,
            stderr=write_fd if output == "capture" else None,
            pass_fds=tuple(pass_fds),
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except BaseException:
        if read_fd >= 0:
            os.close(read_fd)
        raise
    finally:
        if write_fd >= 0:
            os.close(write_fd)
    exited: asyncio.Future[int] = loop.create_future()
    threading.Thread(
        target=_watch, args=(process, loop, exited), name=f"cloacina-child-{process.pid}", daemon=True
    ).start()
    child = Child(process, exited)
    try:
        if stdin:
            assert process.stdin is not None
            transport, writer = await loop.connect_write_pipe(_WriterProtocol, process.stdin)
            child._stdin, child._writer = transport, writer
        if output == "capture":
            tail = child.tail = OutputTail(tail_bytes)
            done: asyncio.Future[None] = loop.create_future()
            child._output = done
            child._output_transport, _ = await loop.connect_read_pipe(
                lambda: _TailProtocol(tail, done), os.fdopen(read_fd, "rb", buffering=0)
            )
    except BaseException:
        kill_group(process.pid)
        raise
    return child


@dataclass(frozen=True)
class Finished:
    """How a bounded run ended: exit status, the end of its output, whether it hit the deadline."""

    returncode: int
    output: str
    timed_out: bool


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on an event loop of its own in a helper thread: works from plain code and inside a loop."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="cloacina-sandbox")
    try:
        return pool.submit(asyncio.run, coro).result()
    finally:  # not waiting on an interrupt: the caller ends the child, which ends the thread
        pool.shutdown(wait=False)


def run_bounded(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str],
    cwd: str | None = None,
    tail_bytes: int = TAIL_BYTES,
) -> Finished:
    """Run ``argv`` to its end or ``timeout_s``, output captured (its tail kept); nothing it started survives."""
    started: list[int] = []

    async def go() -> Finished:
        child = await spawn(argv, env=env, cwd=cwd, output="capture", tail_bytes=tail_bytes)
        started.append(child.pid)
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(child.exited), timeout_s)
        except asyncio.TimeoutError:
            timed_out = True
        finally:
            code = await child.end(0)
        assert child.tail is not None
        return Finished(code, child.tail.text(), timed_out)

    try:
        return run_sync(go())
    except BaseException:  # interrupted (Ctrl-C) while waiting: leave nothing behind
        for pid in started:
            kill_group(pid)
        raise
