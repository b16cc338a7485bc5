"""Task output, captured per attempt: what a task writes to stdout and stderr, and its ``logging`` records.

One mechanism for every place a task runs (the engine's event loop and threads, a registered
package's worker process, a distributed worker):

- ``_current`` (a context variable) names the running attempt's ``AttemptOutput``. ``capturing``
  sets it around the task's code; asyncio tasks and ``contextvars.copy_context().run`` (how plain
  tasks enter their thread) carry it along, so concurrent tasks never see each other's buffer.
- ``sys.stdout`` and ``sys.stderr`` are wrapped (``install``, once; again if someone puts the raw
  stream back) in a ``_Proxy`` that appends to the current buffer when there is one, else writes
  to the stream it wraps. A logging handler on the root logger appends the records that reach it.
- The buffer keeps whole lines, capped at ``MAX_TASK_OUTPUT_BYTES`` of stored form (the start is
  kept; the bytes dropped are counted in ``cut``).
- What the caught output also does is the process's ``echo`` mode: ``"pass"`` (the default) writes
  it on to the stream it was meant for, as before; ``"lines"`` hands each completed line to a
  function (``cloacina-ctl run`` prefixes it with the task id on a terminal); ``"quiet"`` keeps it
  stored only (``run --quiet``; a package's worker process, whose host echoes it instead).

The stored form, encoded and decoded here only: JSON lines ``{"t", "stream", "level", "text"}``
(``stream`` is ``stdout``, ``stderr`` or ``log``; ``level`` only for log records).

Not captured: writes straight to file descriptors 1 and 2 (subprocesses, C code) and output of
threads a task starts itself without its context; they reach the process's streams as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

from ._defaults import MAX_TASK_OUTPUT_BYTES

__all__ = [
    "AttemptOutput",
    "OutputLine",
    "capturing",
    "current",
    "decode",
    "echo",
    "encode_line",
    "enter",
    "leave",
    "line_from_json",
    "outside",
]

Stream = Literal["stdout", "stderr", "log"]
EchoMode = Literal["pass", "lines", "quiet"]

#: a line without its newline longer than this is kept as a line of its own (bounds what waits for one)
_LINE_CHUNK = 64 * 1024
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class OutputLine:
    """One line a task wrote (``stream`` ``stdout`` or ``stderr``), or one of its log records (``log``)."""

    t: float  #: when (seconds since the epoch)
    stream: str  #: ``stdout``, ``stderr`` or ``log``
    text: str  #: the line, without its newline; a log record's ``logger: message`` (and traceback)
    level: str | None = None  #: a log record's level name (``WARNING``...)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"t": self.t, "stream": self.stream, "text": self.text}
        if self.level is not None:
            found["level"] = self.level
        return found

    def display(self) -> str:
        """The line as shown: its text, a log record's level before it."""
        return f"{self.level} {self.text}" if self.level is not None else self.text


def encode_line(line: OutputLine) -> str:
    """A line's stored form: one JSON object, no newline in it."""
    return _ENCODER.encode(line.to_json())


def line_from_json(data: Any) -> OutputLine | None:
    """The line a stored (or sent) JSON object stands for; None if it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return None
    t = data.get("t")
    level = data.get("level")
    return OutputLine(
        t=float(t) if isinstance(t, (int, float)) else 0.0,
        stream=str(data.get("stream") or "stdout"),
        text=data["text"],
        level=level if isinstance(level, str) else None,
    )


def decode(text: str | None) -> tuple[OutputLine, ...]:
    """The lines of a stored output (a line that cannot be read is kept as ``stderr`` text, not lost)."""
    if not text:
        return ()
    lines = []
    for raw in text.splitlines():
        if not raw:
            continue
        try:
            found = line_from_json(json.loads(raw))
        except ValueError:
            found = None
        lines.append(found if found is not None else OutputLine(0.0, "stderr", raw))
    return tuple(lines)


def wire_fragment(output: AttemptOutput) -> str:
    """The output kept since last sent, as members of a JSON object (``"output":[...],"output_cut":N``), or ``""``.

    How a package's worker process sends an attempt's output to the host, in ``op: output`` messages
    while the task runs and in its reply; ``from_wire`` reads them.
    """
    parts, cut = output.take_new()
    if not parts and not cut:
        return ""
    return f'"output":[{",".join(parts)}],"output_cut":{cut}'


def from_wire(message: dict[str, Any]) -> tuple[list[OutputLine], int]:
    """The lines and the bytes cut that a worker's message carries (``wire_fragment``)."""
    found = message.get("output")
    lines = [line for line in map(line_from_json, found) if line is not None] if isinstance(found, list) else []
    cut = message.get("output_cut")
    return lines, cut if isinstance(cut, int) and cut > 0 else 0


def _size(encoded: str) -> int:
    return len(encoded) if encoded.isascii() else len(encoded.encode())


class AttemptOutput:
    """The output of one attempt: complete lines in stored form, capped, the bytes over the cap counted.

    Written from any thread; ``finish()`` ends it (later writes go to the process's streams instead).
    """

    __slots__ = (
        "_cut_sent",
        "_full",
        "_lock",
        "_partial",
        "_parts",
        "_sent",
        "_size",
        "cap",
        "closed",
        "cut",
        "label",
        "version",
    )

    def __init__(self, label: str, cap: int = MAX_TASK_OUTPUT_BYTES) -> None:
        self.label = label  #: what ``echo``'s function is told the line is of (the task id)
        self.cap = cap
        self.cut = 0  #: bytes of output dropped over the cap (UTF-8, newlines included, as written)
        self.version = 0  #: changes whenever something is kept or cut
        self.closed = False
        self._parts: list[str] = []
        self._size = 0
        self._sent = 0  # parts handed out by ``take_new``
        self._cut_sent = 0
        self._full = False
        self._partial: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def lines(self) -> tuple[OutputLine, ...]:
        with self._lock:
            return decode("\n".join(self._parts))

    def write(self, stream: Stream, text: str) -> None:
        """``text`` written to ``stream``: complete lines are kept, the rest waits for its newline."""
        with self._lock:
            if self._full:
                self.cut += _size(text)
                self.version += 1
                return
            pending = self._partial.pop(stream, "") + text
            if "\n" not in pending and len(pending) < _LINE_CHUNK:
                if pending:
                    self._partial[stream] = pending
                return
            *complete, rest = pending.split("\n")
            if len(rest) >= _LINE_CHUNK:
                complete.append(rest)
                rest = ""
            now = time.time()
            for line in complete:
                self._add(OutputLine(now, stream, line))
            if rest and self._over():  # the lines before filled it
                self.cut += _size(rest)
            elif rest:
                self._partial[stream] = rest

    def _over(self) -> bool:
        return self._full

    def log(self, level: str, text: str, t: float) -> None:
        """A log record, formatted."""
        with self._lock:
            self._add(OutputLine(t, "log", text, level))

    def add(self, lines: Iterable[OutputLine], cut: int = 0) -> None:
        """Lines captured elsewhere (a package's worker process), and the bytes it cut."""
        with self._lock:
            for line in lines:
                self._add(line)
            if cut:
                self.cut += cut
                self.version += 1

    def _add(self, line: OutputLine) -> None:
        """Keep ``line`` (under the lock), echo it; over the cap, keep what fits of it and count the rest."""
        if self._full:
            self.cut += _size(line.text) + 1  # its newline too: what was written, as written
            self.version += 1
            return
        encoded = encode_line(line)
        size = _size(encoded) + 1
        if self._size + size > self.cap:
            line, encoded, size = self._fit(line)
            self._full = True
            if not line.text:  # no room for any of it: its newline is cut too
                self.cut += 1
                self.version += 1
                return
        self._parts.append(encoded)
        self._size += size
        self.version += 1
        _echo_line(self.label, line)

    def _fit(self, line: OutputLine) -> tuple[OutputLine, str, int]:
        """What of ``line`` fits in the room left (its start), the bytes that do not counted in ``cut``."""
        room = self.cap - self._size - _size(encode_line(OutputLine(line.t, line.stream, "", line.level))) - 1
        data = line.text.encode()
        keep = max(room, 0)
        while True:
            text = data[:keep].decode(errors="ignore")
            kept = OutputLine(line.t, line.stream, text, line.level)
            encoded = encode_line(kept)
            size = _size(encoded) + 1
            if self._size + size <= self.cap or not text:
                break
            keep -= self._size + size - self.cap  # escapes took more room than the bytes
        self.cut += len(data) - len(text.encode())
        return kept, encoded, size

    def finish(self) -> None:
        """The attempt has ended: keep what waits for a newline, take no more."""
        if not self._partial:  # the common case, no lock needed: nothing waits for a newline
            self.closed = True
            return
        with self._lock:
            for stream, rest in list(self._partial.items()):
                if self._full:
                    self.cut += _size(rest)
                else:
                    self._add(OutputLine(time.time(), stream, rest))
            self._partial.clear()
            self.closed = True

    def stored(self) -> tuple[str | None, int | None]:
        """``(output, output_cut)`` as stored: ``(None, None)`` when the attempt said nothing."""
        if not self.version:  # nothing was ever kept or cut
            return None, None
        with self._lock:
            if not self._parts and not self.cut:
                return None, None
            return "\n".join(self._parts) + "\n" if self._parts else "", self.cut

    def take_new(self) -> tuple[list[str], int]:
        """The stored lines kept, and the bytes cut, since the last call (a worker process sends them on)."""
        with self._lock:
            parts, self._sent = self._parts[self._sent :], len(self._parts)
            cut, self._cut_sent = self.cut - self._cut_sent, self.cut
            return parts, cut


# -- where the current attempt's output goes -------------------------------------------------------

_current: contextvars.ContextVar[AttemptOutput | None] = contextvars.ContextVar("cloacina_output", default=None)


class _Echo:
    mode: EchoMode = "pass"
    show: Callable[[str, OutputLine], None] | None = None


_local = threading.local()  # ``busy``: this thread is passing output on (what it writes is not caught again)


def current() -> AttemptOutput | None:
    """The buffer of the attempt running in this context, if one is and it is still open."""
    found = _current.get()
    return None if found is None or found.closed else found


def enter(output: AttemptOutput) -> contextvars.Token[AttemptOutput | None]:
    """Catch what runs in this context (and the tasks and threads it starts with it) into ``output``,
    until ``leave(token)``."""
    install()
    return _current.set(output)


def leave(token: contextvars.Token[AttemptOutput | None]) -> None:
    _current.reset(token)


@contextlib.contextmanager
def capturing(output: AttemptOutput | None) -> Iterator[None]:
    """``enter`` and ``leave`` around a block (nothing when ``output`` is None)."""
    if output is None:
        yield
        return
    token = enter(output)
    try:
        yield
    finally:
        leave(token)


@contextlib.contextmanager
def outside() -> Iterator[None]:
    """Catch nothing in this context for a while (background tasks started here belong to no attempt)."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


@contextlib.contextmanager
def echo(mode: EchoMode, show: Callable[[str, OutputLine], None] | None = None) -> Iterator[None]:
    """While the block runs, caught output is passed on (``pass``), shown line by line (``lines``: ``show(label,
    line)``, writing to the process's real streams) or kept only (``quiet``)."""
    saved = _Echo.mode, _Echo.show
    _Echo.mode, _Echo.show = mode, show
    try:
        yield
    finally:
        _Echo.mode, _Echo.show = saved


def set_echo(mode: EchoMode) -> None:
    """Set the process's echo mode for good (a package's worker process: ``quiet``)."""
    _Echo.mode, _Echo.show = mode, None


def _echo_line(label: str, line: OutputLine) -> None:
    show = _Echo.show
    if _Echo.mode != "lines" or show is None:
        return
    was = getattr(_local, "busy", False)
    _local.busy = True
    try:
        show(label, line)
    except Exception:  # noqa: BLE001  # showing output must never fail the task that wrote it
        pass
    finally:
        _local.busy = was


def pass_on(lines: Iterable[OutputLine]) -> None:
    """Lines caught elsewhere with no attempt here to keep them: written to this process's streams."""
    for line in lines:
        stream = real_stream("stdout" if line.stream == "stdout" else "stderr")
        with contextlib.suppress(OSError, ValueError):
            stream.write(line.display() + "\n")
            stream.flush()


def absorb(output: AttemptOutput | None, lines: Iterable[OutputLine], cut: int = 0) -> None:
    """Lines (and a cut) from a package's worker process: kept in ``output`` and echoed, else passed on."""
    lines = list(lines)
    if output is None or output.closed:
        pass_on(lines)
        return
    output.add(lines, cut)
    if _Echo.mode == "pass":
        pass_on(lines)


def real_stream(name: Literal["stdout", "stderr"]) -> IO[str]:
    """The stream ``sys.stdout`` or ``sys.stderr`` writes to when nothing is caught."""
    found: Any = getattr(sys, name)
    while isinstance(found, _Proxy):
        found = found.wrapped
    return found  # type: ignore[no-any-return]


class _Proxy:
    """``sys.stdout`` or ``sys.stderr``: into the current attempt's buffer, else to the stream it wraps."""

    def __init__(self, name: Literal["stdout", "stderr"], wrapped: IO[str]) -> None:
        self.name: Literal["stdout", "stderr"] = name
        self.wrapped = wrapped

    def write(self, text: str) -> int:
        output = _current.get()
        if output is None or output.closed or not isinstance(text, str) or getattr(_local, "busy", False):
            return self.wrapped.write(text)
        _local.busy = True
        try:
            output.write(self.name, text)
            if _Echo.mode == "pass":
                with contextlib.suppress(OSError, ValueError):  # a closed pipe never fails a task
                    self.wrapped.write(text)
        finally:
            _local.busy = False
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


class _Handler(logging.Handler):
    """On the root logger: a record reaching it in an attempt's context is kept with that attempt.

    Where Python would have used its last resort (no other handler), the record is passed on to
    stderr as it would have been, unless the echo mode shows or hides it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        output = _current.get()
        if output is None or output.closed or getattr(_local, "busy", False):
            self._last_resort(record)
            return
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001  # a record that cannot be formatted is reported by logging
            self.handleError(record)
            return
        _local.busy = True
        try:
            output.log(record.levelname, text, record.created)
        finally:
            _local.busy = False
        if _Echo.mode == "pass":
            self._last_resort(record)

    def _last_resort(self, record: logging.LogRecord) -> None:
        resort = logging.lastResort
        if resort is None or record.levelno < resort.level or self._others(record):
            return
        was = getattr(_local, "busy", False)
        _local.busy = True
        try:
            resort.handle(record)
        finally:
            _local.busy = was

    def _others(self, record: logging.LogRecord) -> bool:
        """Whether a handler other than this one sees ``record`` (as ``Logger.callHandlers`` looks)."""
        logger: logging.Logger | None = logging.getLogger(record.name) if record.name != "root" else logging.root
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False


_handler = _Handler()


def install() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` and put the handler on the root logger, unless done already."""
    out, err = sys.stdout, sys.stderr
    if (
        type(out) is _Proxy
        and type(err) is _Proxy
        and out.name == "stdout"
        and err.name == "stderr"
        and _handler in logging.root.handlers
    ):
        return
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not (isinstance(stream, _Proxy) and stream.name == name):
            setattr(sys, name, _Proxy(name, stream))
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
