"""``cloacina-ctl executions``: the history of executions, and each one's tasks, attempts and errors."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from cloacina_workflow import ExecutionStatus

from .._engine._history import find_execution, list_executions
from .._engine._views import execution_detail_json, execution_summary_json
from . import _complete as complete
from ._common import Settings, global_options, pass_settings, print_json
from ._logs import logs_command, output_summary
from ._progress import _STYLE, format_duration
from ._text import local_time

#: what ``--status`` accepts: ``queued`` (stored detached, not started by a host yet) and every status
STATUSES = ("queued", *(s.value for s in ExecutionStatus))


@click.group("executions")
def executions_group() -> None:
    """Executions stored in the database: list, show, print what their tasks wrote, watch, cancel, retry or rerun."""


@executions_group.command("list")
@click.option(
    "--workflow",
    "-w",
    metavar="NAME",
    shell_complete=complete.workflows,
    help="Only this workflow (NAME, PACKAGE::NAME or a namespace).",
)
@click.option("--status", "-s", type=click.Choice(STATUSES), help="Only executions in this status.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many.")
@global_options
@pass_settings
def list_command(settings: Settings, workflow: str | None, status: str | None, limit: int) -> None:
    """List executions, newest first."""
    client = settings.remote()
    if client is not None:
        from ._client import path

        view = client.get(path("executions"), workflow=workflow, status=status, limit=limit)
        where = f"tenant {settings.tenant!r} of {client.url}"
    else:
        if workflow:
            from .._discovery import check_tenant_of

            check_tenant_of(workflow, settings.tenant)
        found = list_executions(
            settings.database_url,
            home=settings.home,
            tenant=settings.tenant,
            workflow=workflow,
            status=status,
            limit=limit,
            database=settings.database(read_only=True),
        )
        view = {"executions": [execution_summary_json(r) for r in found.records]}
        where = found.where
    if settings.json:
        print_json(view)
        return
    records = view["executions"]
    if not records:
        settings.out.print(f"No executions in {where} match.", markup=False)
        return
    out = settings.out
    names = _list_table(records, id_length=36, errors=False)  # what must fit: the error column is wrapped
    narrow = out.measure(names, options=out.options.update_width(10_000)).maximum > out.width
    # a narrow terminal: ids as the unique prefix `executions show` accepts
    table = _list_table(records, id_length=SHORT_ID if narrow else 36)
    out.print(table)


#: the length of an execution id's prefix shown when the full one does not fit the terminal
SHORT_ID = 8


def _list_table(records: list[dict[str, Any]], *, id_length: int, errors: bool = True) -> Table:
    """The executions as a table; names never split (the error column alone is wrapped)."""
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "WORKFLOW", "STATUS", "STARTED", "DURATION", "ERROR"):
        table.add_column(column, no_wrap=column != "ERROR", overflow="fold" if column == "ERROR" else "ellipsis")
    for r in records:
        table.add_row(
            r["id"][:id_length],
            r["workflow"],
            Text(r["status"], style=_STYLE.get(r["status"], "")),
            local_time(r["created_at"]),
            format_duration(r["duration_s"]),
            Text(r["error"] or "" if errors else ""),
        )
    return table


def execution_view(settings: Settings, execution_id: str, *, read_only: bool = True) -> dict[str, Any]:
    """``executions show --json`` of execution ID (or a unique prefix): from the server, or the database."""
    client = settings.remote()
    if client is not None:
        from ._client import path

        return dict(client.get(path("executions", execution_id)))
    record = find_execution(
        settings.database_url,
        home=settings.home,
        tenant=settings.tenant,
        execution_id=execution_id,
        database=settings.database(read_only=read_only),
    )
    return execution_detail_json(record)


@executions_group.command("show")
@click.argument("execution_id", metavar="ID", shell_complete=complete.executions)
@global_options
@pass_settings
def show_command(settings: Settings, execution_id: str) -> None:
    """Show execution ID (or a unique prefix of it): each task's status, attempts, durations and errors."""
    record = execution_view(settings, execution_id)
    if settings.json:
        print_json(record)
        return
    out = settings.out
    status = record["status"]
    out.print(f"Execution {record['id']}", markup=False)
    out.print(f"  workflow  {record['workflow']}", markup=False)
    if record["package_version"] is not None:
        out.print(f"  version   {record['package_version']}", markup=False)
    if record["workflow_fingerprint"] is not None:
        out.print(f"  fingerprint {record['workflow_fingerprint']}", markup=False)
    out.print(Text.assemble("  status    ", Text(status, style=_STYLE.get(status, ""))))
    if record["rerun_of"] is not None:
        out.print(f"  rerun of  {record['rerun_of']}", markup=False)
    if record["started_by"] is not None and record["started_by"] != "manual":
        out.print(f"  by        {record['started_by']}", markup=False)
    out.print(f"  started   {local_time(record['created_at'])}", markup=False)
    finished = f"{local_time(record['finished_at'])}  ({format_duration(record['duration_s'])})"
    out.print(f"  finished  {finished}", markup=False)
    if record["error"]:
        out.print(f"  error     {record['error']}", markup=False)
    table = Table(box=None, pad_edge=False, title=None)
    for column in ("TASK", "STATUS", "ATTEMPTS", "DURATION", "ERROR"):  # names are never split
        table.add_column(column, no_wrap=column != "ERROR", overflow="fold" if column == "ERROR" else "ellipsis")
    for t in record["tasks"]:
        table.add_row(
            t["task_id"],
            Text(t["status"], style=_STYLE.get(t["status"], "")),
            str(len(t["attempts"])),
            format_duration(t["duration_s"]),
            Text(t["error"] or ""),
        )
    out.print()
    out.print(table)
    _failed_attempts(settings, record)
    out.print()
    for line in output_summary(record):
        out.print(line, markup=False)
    if record["events"]:
        out.print()
        out.print("Events:", markup=False)
        for e in record["events"]:
            detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items() if v is not None)
            at = local_time(e["at"])
            out.print(f"  {at}  {e['kind']} by {e['actor']}" + (f" ({detail})" if detail else ""), markup=False)
    if record["final_context"] is not None:
        out.print()
        out.print("Final context:", markup=False)
        print_json(record["final_context"])


def _failed_attempts(settings: Settings, record: dict[str, Any]) -> None:
    out = settings.out
    failed = [
        (t["task_id"], a) for t in record["tasks"] for a in t["attempts"] if a["status"] in ("failed", "interrupted")
    ]
    if not failed:
        return
    out.print()
    out.print("Failed attempts:", markup=False)
    for task_id, a in failed:
        out.print(
            f"  {task_id} attempt {a['attempt']} ({a['status']}, {format_duration(a['duration_s'])}): {a['error']}",
            markup=False,
        )
        if settings.verbose and a["traceback"]:
            for line in a["traceback"].rstrip().splitlines():
                out.print(f"      {line}", markup=False)


def _attach_operations() -> None:
    from ._operate import COMMANDS  # cancel, retry, rerun, watch

    for command in COMMANDS:
        executions_group.add_command(command)


executions_group.add_command(logs_command)
_attach_operations()
