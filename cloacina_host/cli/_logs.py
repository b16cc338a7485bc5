"""``cloacina-ctl executions logs``: what each attempt of an execution's tasks wrote, and ``--follow``.

The output is read from the database (``task_attempts.output``), so it shows executions run
anywhere: by ``run``, ``serve``, a registered package's worker process or distributed workers.
Running attempts' output is stored at most once a second (``OUTPUT_FLUSH_S``); ``--follow`` polls
for it until the execution ends. With ``--server`` the same document comes from the API.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from .._output import line_from_json
from . import _complete as complete
from ._common import Settings, global_options, pass_settings, print_json

#: statuses of an execution that has not ended yet (``--follow`` goes on)
UNFINISHED = frozenset({"running", "queued", "pending"})
#: how often ``--follow`` reads the database
FOLLOW_POLL_S = 0.5


def cut_note(cut: int) -> str:
    return f"({cut:,} bytes of output cut: an attempt keeps its first 1 MiB)"


def _display(line: dict[str, Any]) -> str:
    found = line_from_json(line)
    assert found is not None
    return found.display()


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
    logs = _read(settings, execution_id, task_id, attempt)
    if follow:
        try:
            _follow(settings, logs, task_id, attempt)
        except KeyboardInterrupt:  # Ctrl-C ends following; nothing failed
            return
        return
    if settings.json:
        print_json(logs)
        return
    bare = task_id is not None and attempt is not None
    for a in logs["attempts"]:
        if not bare:
            click.echo(f"==> {a['task_id']} attempt {a['attempt']} ({a['status']}) <==")
        for line in a["output"]:
            click.echo(_display(line))
        if a["output_cut"]:
            click.echo(cut_note(a["output_cut"]))
    if not logs["attempts"]:
        click.echo(f"No attempts of execution {logs['execution_id']} match yet.", err=True)


def _read(settings: Settings, execution_id: str, task_id: str | None, attempt: int | None) -> dict[str, Any]:
    """``executions logs --json`` of the attempts asked for: from the server, or the database."""
    client = settings.remote()
    if client is not None:
        from ._client import path

        return dict(client.get(path("executions", execution_id, "logs"), task=task_id, attempt=attempt))
    from .._engine._history import find_execution
    from .._engine._logs import logs_json

    record = find_execution(
        settings.database_url,
        home=settings.home,
        tenant=settings.tenant,
        execution_id=execution_id,
        database=settings.database(read_only=True),
    )
    return logs_json(record, task_id, attempt)


def _follow(settings: Settings, logs: dict[str, Any], task_id: str | None, attempt: int | None) -> None:
    """Print new lines as they are stored, until the execution has ended (one last read after)."""
    shown: dict[tuple[str, int], int] = {}
    while True:
        ended = logs["status"] not in UNFINISHED
        for a in logs["attempts"]:
            lines = a["output"]
            start = shown.get((a["task_id"], a["attempt"]), 0)
            for line in lines[start:]:
                _print_followed(settings, a["task_id"], a["attempt"], line, prefix=task_id is None)
            shown[(a["task_id"], a["attempt"])] = len(lines)
        if ended:
            return
        time.sleep(FOLLOW_POLL_S)
        logs = _read(settings, logs["execution_id"], task_id, attempt)


def _print_followed(settings: Settings, task_id: str, attempt: int, line: dict[str, Any], *, prefix: bool) -> None:
    if settings.json:
        print_json_line({"task_id": task_id, "attempt": attempt, **line})
        return
    label = task_id if attempt == 1 else f"{task_id}#{attempt}"
    click.echo(f"[{label}] {_display(line)}" if prefix else _display(line))


def print_json_line(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, separators=(",", ":")))


def output_summary(record: dict[str, Any]) -> list[str]:
    """``executions show``'s lines about output (from its JSON view): how many lines each attempt wrote,
    and the command to see them."""
    found = [(t, a) for t in record["tasks"] for a in t["attempts"] if a["output"] or a["output_cut"]]
    if not found:
        return ["Output: none written."]
    lines = ["Output:"]
    for t, a in found:
        count = len(a["output"])
        cut = f", {a['output_cut']:,} bytes cut" if a["output_cut"] else ""
        lines.append(f"  {t['task_id']} attempt {a['attempt']}: {count} line{'s' if count != 1 else ''}{cut}")
    lines.append(f"See it: cloacina-ctl executions logs {record['id']} [--task TASK] [--attempt N] [--follow]")
    return lines
