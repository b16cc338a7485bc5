"""Live progress of one execution for ``cloacina-ctl run``: an observer plugin of the engine's events.

On a terminal, a rich table redrawn as tasks start, retry and finish; otherwise one plain line per
event, so logs and CI output stay readable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cloacina_workflow import Workflow, hookimpl

_STYLE = {
    "pending": "dim",
    "running": "cyan",
    "retrying": "yellow",
    "retry_wait": "yellow",
    "deferred": "blue",
    "completed": "green",
    "failed": "bold red",
    "skipped": "magenta",
    "cancelled": "yellow",
    "queued": "dim",
}


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


@dataclass
class _Row:
    status: str = "pending"
    attempt: int = 0
    started: float | None = None
    duration_s: float | None = None
    note: str = ""


class Progress:
    """Register on the runner's plugin manager; ``execution_id`` filters the events shown."""

    def __init__(self, workflow: Workflow, console: Console, *, live: bool, plain: bool) -> None:
        self.console = console
        self.execution_id: str | None = None
        self.rows = {tid: _Row() for tid in workflow.order}
        self.plain = plain and not live
        self._live = Live(self._table(), console=console, auto_refresh=False, transient=False) if live else None

    def __enter__(self) -> Progress:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
            self._live.stop()

    def _mine(self, execution_id: str) -> bool:
        return self.execution_id is None or execution_id == self.execution_id

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False)
        for column in ("TASK", "STATUS", "ATTEMPT", "DURATION", ""):  # task ids are never split
            table.add_column(column, no_wrap=column != "", overflow="fold" if column == "" else "ellipsis")
        now = time.perf_counter()
        for tid, row in self.rows.items():
            duration = row.duration_s
            if duration is None and row.started is not None:
                duration = now - row.started
            table.add_row(
                tid,
                Text(row.status, style=_STYLE.get(row.status, "")),
                str(row.attempt or "-"),
                format_duration(duration),
                row.note,
            )
        return table

    def _changed(self, line: str) -> None:
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
        elif self.plain:
            self.console.print(line, markup=False, highlight=False)

    @hookimpl
    def cloacina_execution_started(self, execution_id: str, workflow: str) -> None:
        if self._mine(execution_id):
            self._changed(f"execution {execution_id} of {workflow} started")

    @hookimpl
    def cloacina_task_started(self, execution_id: str, task_id: str, attempt: int) -> None:
        if not self._mine(execution_id) or task_id not in self.rows:
            return
        row = self.rows[task_id]
        row.status, row.attempt, row.started, row.note = "running", attempt, time.perf_counter(), ""
        self._changed(f"{task_id}: running (attempt {attempt})")

    @hookimpl
    def cloacina_task_retrying(self, execution_id: str, task_id: str, attempt: int, error: str, delay_s: float) -> None:
        if not self._mine(execution_id) or task_id not in self.rows:
            return
        row = self.rows[task_id]
        row.status, row.note = "retrying", f"attempt {attempt} failed: {error}; again in {delay_s:.2f} s"
        self._changed(f"{task_id}: {row.note}")

    @hookimpl
    def cloacina_task_deferred(self, execution_id: str, task_id: str, attempt: int, note: str) -> None:
        if not self._mine(execution_id) or task_id not in self.rows:
            return
        row = self.rows[task_id]
        row.status, row.note = "deferred", f"attempt {attempt} {note}"
        self._changed(f"{task_id}: {row.note}")

    @hookimpl
    def cloacina_task_finished(
        self, execution_id: str, task_id: str, status: str, attempts: int, duration_s: float, error: str | None
    ) -> None:
        if not self._mine(execution_id) or task_id not in self.rows:
            return
        row = self.rows[task_id]
        row.status, row.attempt, row.duration_s, row.note = status, attempts, duration_s, error or ""
        suffix = f" — {error}" if error else ""
        self._changed(f"{task_id}: {status} after {attempts} attempt(s), {format_duration(duration_s)}{suffix}")

    @hookimpl
    def cloacina_execution_finished(self, execution_id: str, status: str) -> None:
        if self._mine(execution_id):
            self._changed(f"execution {execution_id} {status}")
