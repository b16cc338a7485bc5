"""``cloacina-ctl executions logs``: what each attempt of an execution's tasks wrote, and ``--follow``.

The output is read from the database (``task_attempts.output``), so it shows executions run
anywhere: by ``run``, ``serve``, a registered package's worker process or distributed workers.
Running attempts' output is stored at most once a second (``OUTPUT_FLUSH_S``); ``--follow`` polls
for it until the execution ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import click

from .._engine._history import ExecutionRecord, find_execution
from .._engine._views import attempt_output_json, line_json
from .._errors import NotFoundError
from .._output import OutputLine
from .._storage._records import AttemptRecord, TaskRecord
from . import _complete as complete
from ._common import Settings, global_options, pass_settings, print_json

#: statuses of an execution that has not ended yet (``--follow`` goes on)
UNFINISHED = frozenset({"running", "queued", "pending"})
#: how often ``--follow`` reads the database
FOLLOW_POLL_S = 0.5


def _selected(
    record: ExecutionRecord, task_id: str | None, attempt: int | None
) -> Iterator[tuple[TaskRecord, AttemptRecord]]:
    """The attempts asked for, in workflow order.

    An unknown task or attempt is ``NotFoundError`` naming those there are.
    """
    tasks = list(record.tasks)
    if task_id is not None:
        tasks = [t for t in tasks if t.task_id == task_id]
        if not tasks:
            names = ", ".join(t.task_id for t in record.tasks) or "none"
            raise NotFoundError(f"Execution {record.id} has no task {task_id!r} (its tasks: {names}).")
    for t in tasks:
        attempts = list(t.attempts)
        if attempt is not None:
            attempts = [a for a in attempts if a.attempt == attempt]
            if not attempts and task_id is not None:
                there = ", ".join(str(a.attempt) for a in t.attempts) or "none yet"
                raise NotFoundError(
                    f"Task {t.task_id!r} of execution {record.id} has no attempt {attempt} (its attempts: {there})."
                )
        for a in attempts:
            yield t, a
    if attempt is not None and task_id is None and not any(a.attempt == attempt for t in tasks for a in t.attempts):
        most = max((a.attempt for t in tasks for a in t.attempts), default=0)
        raise NotFoundError(f"No task of execution {record.id} has an attempt {attempt} (the most any has: {most}).")


def cut_note(cut: int) -> str:
    return f"({cut:,} bytes of output cut: an attempt keeps its first 1 MiB)"


@click.command("logs")
@click.argument("execution_id", metavar="ID", shell_complete=complete.executions)
@click.option("--task", "-t", "task_id", metavar="TASK", help="Only this task's attempts.")
@click.option("--attempt", "-a", type=click.IntRange(min=1), metavar="N", help="Only attempt N (of each task shown).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output until the execution ends (Ctrl-C stops).")
@global_options
@pass_settings
def logs_command(settings: Settings, execution_id: str, task_id: str | None, attempt: int | None, follow: bool) -> None:
    """Print what the tasks of execution ID (or a unique prefix) wrote: stdout, stderr and log records.

    Each attempt under a header; one attempt (--task and --attempt) as bare lines. --json gives the
    records ({t, stream, level, text}); with --follow, one JSON object per line as they come.
    """
    record = _read(settings, execution_id)
    selected = list(_selected(record, task_id, attempt))
    if follow:
        try:
            _follow(settings, record, task_id, attempt)
        except KeyboardInterrupt:  # Ctrl-C ends following; nothing failed
            return
        return
    if settings.json:
        print_json(
            {
                "execution_id": record.id,
                "status": record.status,
                "attempts": [
                    {"task_id": t.task_id, "attempt": a.attempt, "status": a.status, **attempt_output_json(a)}
                    for t, a in selected
                ],
            }
        )
        return
    bare = task_id is not None and attempt is not None
    for t, a in selected:
        if not bare:
            click.echo(f"==> {t.task_id} attempt {a.attempt} ({a.status}) <==")
        for line in a.output:
            click.echo(line.display())
        if a.output_cut:
            click.echo(cut_note(a.output_cut))
    if not selected:
        click.echo(f"No attempts of execution {record.id} match yet.", err=True)


def _read(settings: Settings, execution_id: str) -> ExecutionRecord:
    return find_execution(
        settings.database_url,
        home=settings.home,
        tenant=settings.tenant,
        execution_id=execution_id,
        database=settings.database(read_only=True),
    )


def _follow(settings: Settings, record: ExecutionRecord, task_id: str | None, attempt: int | None) -> None:
    """Print new lines as they are stored, until the execution has ended (one last read after)."""
    shown: dict[tuple[str, int], int] = {}
    while True:
        ended = record.status not in UNFINISHED
        for t, a in _selected(record, task_id, attempt):
            lines = a.output
            start = shown.get((t.task_id, a.attempt), 0)
            for line in lines[start:]:
                _print_followed(settings, t.task_id, a.attempt, line, prefix=task_id is None)
            shown[(t.task_id, a.attempt)] = len(lines)
        if ended:
            return
        time.sleep(FOLLOW_POLL_S)
        record = _read(settings, record.id)


def _print_followed(settings: Settings, task_id: str, attempt: int, line: OutputLine, *, prefix: bool) -> None:
    if settings.json:
        print_json_line({"task_id": task_id, "attempt": attempt, **line_json(line)})
        return
    label = task_id if attempt == 1 else f"{task_id}#{attempt}"
    click.echo(f"[{label}] {line.display()}" if prefix else line.display())


def print_json_line(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, separators=(",", ":")))


def output_summary(record: ExecutionRecord) -> list[str]:
    """``executions show``'s lines about output: how many lines each attempt wrote, and the command to see them."""
    found = [(t, a) for t in record.tasks for a in t.attempts if a.output or a.output_cut]
    if not found:
        return ["Output: none written."]
    lines = ["Output:"]
    for t, a in found:
        count = len(a.output)
        cut = f", {a.output_cut:,} bytes cut" if a.output_cut else ""
        lines.append(f"  {t.task_id} attempt {a.attempt}: {count} line{'s' if count != 1 else ''}{cut}")
    lines.append(f"See it: cloacina-ctl executions logs {record.id} [--task TASK] [--attempt N] [--follow]")
    return lines
