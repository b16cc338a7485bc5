"""The CLI's standard streams: stdout carries only the result, and a closed pipe ends nothing.

While package code runs (``package_output_to_stderr``: discovery's imports, ``run``'s execution,
``serve``, ``worker``, a registration's load check), what it writes to stdout goes to stderr, at
both levels: ``sys.stdout`` is ``sys.stderr`` (tasks run in this process), and file descriptors 1
and 2 are the write end of one pipe (child processes, such as a registered package's worker,
inherit it; C code writing to fd 1 too). A relay thread copies that pipe to the real stderr; when
stderr is closed (its reader gone) it drops the output instead, so a task's ``print`` never fails
and ``serve`` never blocks on it. The result is printed after, to the real stdout.

A result written to a stdout whose reader has gone (``| head -1``) ends the command quietly, the
way Python's documentation recommends: devnull goes onto the descriptor, so that nothing fails at
exit, and the exit status is that of the command (0 when it had nothing else to say).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import struct
import sys
import termios
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["closed_pipe", "package_output_to_stderr", "real_stdout", "silence_closed_streams", "was_a_terminal"]

#: how long leaving ``package_output_to_stderr`` waits for the relay to pass on what was written
_DRAIN_S = 5.0


class _Relay:
    """File descriptors 1 and 2 redirected into a pipe, copied to the real stderr by a daemon thread."""

    def __init__(self) -> None:
        self.saved_out = os.dup(1)
        self.saved_err = os.dup(2)
        self._dest = os.dup(2)  # the relay's own: it may outlive the redirection (a worker still printing)
        self._read, write = os.pipe()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, name="cloacina-output-relay", daemon=True)
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        self._thread.start()

    def _pump(self) -> None:
        broken = False
        while True:
            try:
                select.select([self._read], [], [])  # wait for data (or the end) outside the lock
            except OSError:
                return
            with self._lock:  # held while a chunk is in flight: ``restore`` sees it read and passed on, or not read
                try:
                    data = os.read(self._read, 65536)
                except OSError:
                    return
                if not data:  # every writer is gone
                    return
                while data and not broken:
                    try:
                        data = data[os.write(self._dest, data) :]
                    except InterruptedError:
                        continue
                    except OSError:  # the reader of stderr has gone: drop the output from now on
                        broken = True

    def restore(self) -> None:
        """Put the real stdout and stderr back, then wait (a bounded time) until the pipe is drained.

        Drained: the relay saw the end of the pipe (nobody else holds it), or the pipe is empty and
        the relay idle (a package's worker process still holds it, and may write more later).
        """
        os.dup2(self.saved_out, 1)
        os.dup2(self.saved_err, 2)
        os.close(self.saved_out)
        os.close(self.saved_err)
        deadline = time.monotonic() + _DRAIN_S
        while time.monotonic() < deadline:
            self._thread.join(0.002)
            if not self._thread.is_alive():
                return
            with self._lock:
                if self._pending() == 0:
                    return

    def _pending(self) -> int:
        """Bytes written to the pipe and not read yet."""
        try:
            found = fcntl.ioctl(self._read, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return int(struct.unpack("i", found)[0])


_state: dict[str, Any] = {"depth": 0, "stdout": None, "tty": {}}


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _flush(stream: IO[str] | None) -> None:
    with contextlib.suppress(Exception):  # a closed or broken stream has nothing to flush
        if stream is not None:
            stream.flush()


def was_a_terminal(stream: IO[str]) -> bool:
    """``stream.isatty()``, as it was before ``package_output_to_stderr`` put a pipe under it."""
    tty: dict[int, bool] = _state["tty"]
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        fd = -1
    if fd in tty:
        return tty[fd]
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


def real_stdout() -> IO[str]:
    """The stream results go to: ``sys.stdout``, or the one it was before ``package_output_to_stderr``."""
    saved: IO[str] | None = _state["stdout"]
    return saved if saved is not None else sys.stdout


@contextlib.contextmanager
def package_output_to_stderr() -> Iterator[None]:
    """While package code runs: what it writes to stdout goes to stderr, and a closed stderr fails nothing.

    Re-entrant (an inner use does nothing). Print the result after leaving it.
    """
    if _state["depth"]:
        _state["depth"] += 1
        try:
            yield
        finally:
            _state["depth"] -= 1
        return
    _flush(sys.stdout)
    _flush(sys.stderr)
    relay = None
    if _fd_open(1) and _fd_open(2):
        _state["tty"] = {fd: os.isatty(fd) for fd in (1, 2)}
        relay = _Relay()
    saved = sys.stdout
    _state["stdout"], _state["depth"] = saved, 1
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        _flush(sys.stderr)
        _flush(saved)  # written by code that held on to it
        sys.stdout = saved
        _state["stdout"], _state["depth"] = None, 0
        if relay is not None:
            relay.restore()
            _state["tty"] = {}


def closed_pipe(exc: BaseException) -> bool:
    """``exc`` says the reader of a pipe we wrote to has gone (EPIPE)."""
    return isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError) and exc.errno == errno.EPIPE)


def _reader_gone(fd: int) -> bool:
    """The write end ``fd`` of a pipe or socket whose reader has gone (POLLERR/POLLHUP), without writing."""
    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    try:
        events = poller.poll(0)
    except OSError:
        return False
    return any(mask & (select.POLLERR | select.POLLHUP) for _fd, mask in events)


def silence_closed_streams() -> bool:
    """Put devnull onto stdout and stderr where their reader has gone; True if stdout's had.

    Python's recipe for a closed stdout (``| head``): without it, the flush at exit fails again
    and prints "Exception ignored ... BrokenPipeError".
    """
    stdout_gone = False
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
        try:
            if stream is not None:
                stream.flush()
            gone = _reader_gone(fd)
        except OSError as exc:
            gone = closed_pipe(exc) or _reader_gone(fd)
        except ValueError:  # a closed file object
            gone = False
        if gone:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
            stdout_gone = stdout_gone or fd == 1
    return stdout_gone
