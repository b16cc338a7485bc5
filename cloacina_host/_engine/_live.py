"""Running attempts' output stored before they end, so that ``executions logs --follow`` sees it.

An attempt's output is stored with its end, in the same write (no write more per task). An attempt
still running ``OUTPUT_FLUSH_S`` after it started, whose output changed since last stored, has it
stored again, at most once per ``OUTPUT_FLUSH_S``: one timer for all the attempts a driver runs,
armed only while some run. An attempt that writes nothing costs nothing more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from .._defaults import OUTPUT_FLUSH_S
from .._output import AttemptOutput
from .._storage import GroupCommitWriter
from .._storage import _ends as se
from .._storage import _ops as ops_

log = logging.getLogger("cloacina_host.engine")

#: ``(execution_id, task_id, attempt, output, output_cut)`` of running attempts whose output changed
OutputRows = list[tuple[str, str, int, str, int]]


@dataclass(slots=True)
class _Watched:
    execution_id: str
    task_id: str
    attempt: int
    since: float
    version: int = 0


class LiveOutputs:
    """The running attempts' outputs of one driver; ``store(rows)`` is called with those to store."""

    def __init__(self, store: Callable[[OutputRows], None], interval_s: float = OUTPUT_FLUSH_S) -> None:
        self._store = store
        self.interval_s = interval_s
        self._watched: dict[AttemptOutput, _Watched] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the timer runs on, while armed

    def watch(self, output: AttemptOutput, execution_id: str, task_id: str, attempt: int) -> None:
        """``output`` is a running attempt's (call on the event loop)."""
        loop = self._loop
        if self._timer is None or loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.interval_s, self._tick)
        self._watched[output] = _Watched(execution_id, task_id, attempt, loop.time())

    def forget(self, output: AttemptOutput) -> None:
        """The attempt has ended (its end stores its output)."""
        self._watched.pop(output, None)

    def _tick(self) -> None:
        self._timer = None
        if not self._watched:
            return
        loop = asyncio.get_running_loop()
        due = loop.time() - self.interval_s
        rows: OutputRows = []
        for output, watched in self._watched.items():
            if watched.since <= due and output.version != watched.version:
                watched.version = output.version
                text, cut = output.stored()
                rows.append((watched.execution_id, watched.task_id, watched.attempt, text or "", cut or 0))
        if rows:
            try:
                self._store(rows)
            except Exception:  # the attempt's end stores its output anyway
                log.exception("could not store the output of %d running attempt(s)", len(rows))
        self._timer = loop.call_later(self.interval_s, self._tick)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._watched.clear()


def store_with(writer: GroupCommitWriter) -> Callable[[OutputRows], None]:
    """``LiveOutputs``' ``store`` for an in-process engine: the rows go to its group-commit writer."""

    def store(rows: OutputRows) -> None:
        ops = [ops_.attempt_output(eid, tid, n, output=text, output_cut=cut) for eid, tid, n, text, cut in rows]
        writer.submit(ops).add_done_callback(logged)

    return store


def logged(future: asyncio.Future[None]) -> None:
    """A failure to store running output: the attempt's end stores it all anyway."""
    if not future.cancelled() and future.exception() is not None:
        log.debug("the output of running attempts was not stored: %s", future.exception())


def with_output(end: se.TaskEnd, written: AttemptOutput | None) -> se.TaskEnd:
    """A distributed attempt's end, with what it wrote."""
    if written is None:
        return end
    logs, cut = written.stored()
    return dataclasses.replace(end, logs=logs, logs_cut=cut) if logs is not None or cut else end
