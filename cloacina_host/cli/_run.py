"""``cloacina-ctl run``: run a workflow on the durable engine, show progress, print the final context."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cloacina_workflow.limits import MAX_CONTEXT_BYTES, context_too_large, loads_limited

from .._discovery import CatalogEntry
from .._engine import DefaultRunner, ExecutionResult
from .._errors import HostError, UsageError, WorkflowNotFoundError
from .._files import FileTooLarge, NotRegularFile, read_regular_file
from . import _complete as complete
from ._common import (
    Settings,
    global_options,
    max_concurrent_tasks_option,
    pass_settings,
    print_json,
    task_timeout_option,
)
from ._echo import task_output_shown
from ._progress import Progress
from ._streams import package_output_to_stderr

if TYPE_CHECKING:
    from ._client import Client


class ExecutionFailedError(HostError):
    """The workflow ran and failed: exit status 1, with the failing task's error and where to look."""

    def __init__(self, execution_id: str, error: str | None) -> None:
        reason = (error or "it failed").rstrip(".")
        super().__init__(f"{reason}. Details: cloacina-ctl executions show {execution_id}")
        self.execution_id = execution_id


@click.command("run")
@click.argument("workflow", shell_complete=complete.workflows)
@click.option(
    "--context", "context_arg", metavar="JSON|@FILE", help="Initial context: a JSON object, or @path to a JSON file."
)
@max_concurrent_tasks_option
@task_timeout_option
@click.option(
    "--detach",
    is_flag=True,
    help="Only store the execution and print its id; a `cloacina-ctl serve` sharing the database runs it "
    "(with --distributed: `cloacina-ctl worker` processes run it).",
)
@click.option(
    "--distributed",
    is_flag=True,
    help="PostgreSQL: store the execution for `cloacina-ctl worker` processes (on any machines) to run task "
    "by task, and wait for its result (--detach: do not wait).",
)
@click.option("--quiet", "-q", is_flag=True, help="Do not show what tasks write (it is stored: `executions logs ID`).")
@global_options
@pass_settings
def run_command(
    settings: Settings,
    workflow: str,
    context_arg: str | None,
    max_concurrent_tasks: int,
    default_timeout_s: float | None,
    detach: bool,
    distributed: bool,
    quiet: bool,
) -> None:
    """Run WORKFLOW (name, PACKAGE::NAME or TENANT::PACKAGE::NAME) and print its final context.

    Every state change is stored (see `cloacina-ctl executions show ID`). Progress goes to stderr:
    a live table on a terminal, one line per event otherwise; the final context (or the whole result
    with --json) goes to stdout. Exits 1 when the execution fails.

    A registered package runs its active version (in a worker process of its own); the execution
    records that version and the workflow's fingerprint.
    """
    context = read_context(context_arg)
    client = settings.remote()
    if client is not None:
        _run_remote(settings, client, workflow, context, detach=detach, distributed=distributed)
        return
    with package_output_to_stderr():  # what tasks print goes to stderr: stdout carries only the result
        entry = _resolve(settings, workflow)
        namespace = entry.namespace(settings.tenant)
        runner = DefaultRunner(
            settings.database_url,
            catalog=settings.catalog(),
            home=settings.home,
            tenant=settings.tenant,
            max_concurrent_tasks=max_concurrent_tasks,
            default_timeout_s=default_timeout_s,
            recover=False,  # resuming other executions is a long-running host's job, not this command's
            database=settings.database(),  # the one the catalog's registry reads too
        )
        err = settings.err
        if distributed:
            from .._engine._distributed import require_postgresql

            require_postgresql(settings.database_url, settings.home, "cloacina-ctl run --distributed")
        if detach:
            execution_id = asyncio.run(_submit(runner, entry, context, distributed=distributed))
        elif distributed:  # its events happen in the workers: only the end is shown here
            err.print(f"waiting for `cloacina-ctl worker` processes to run {namespace}", markup=False)
            result = asyncio.run(_run_distributed(runner, entry, context))
        else:
            from ._operate import EXIT_INTERRUPTED, Interrupted

            progress = Progress(entry.workflow, err, live=err.is_terminal, plain=not settings.json)
            try:
                with task_output_shown(err, quiet=quiet):  # on stderr, [task_id] before each line on a terminal
                    result = asyncio.run(_run(runner, entry, context, progress, settings))
            except Interrupted as exc:  # Ctrl-C: it said whether it cancelled the execution or left it to serve
                err.print(exc.message, markup=False)
                raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    if detach:
        runs_it = "`cloacina-ctl worker` (or `serve`) processes" if distributed else "a `cloacina-ctl serve`"
        _detached(settings, execution_id, namespace, f"{runs_it} sharing this database run it")
        return
    from ._operate import report_result

    report_result(settings, result.to_json())


def _run_remote(
    settings: Settings, client: Client, workflow: str, context: dict[str, Any], *, detach: bool, distributed: bool
) -> None:
    """``run`` through the server: submitted there (its typed input checked there: 422 names the field),
    then followed to its end (``--detach``: its id)."""
    from ._client import path
    from ._operate import follow_to_end, refuse_remote

    refuse_remote(settings, "--distributed", distributed)
    submitted = client.post(path("executions"), {"workflow": workflow, "context": context})
    execution_id, namespace = submitted["execution_id"], submitted["workflow"]
    if detach:
        _detached(settings, execution_id, namespace, f"the server at {client.url} runs it")
        return
    follow_to_end(settings, execution_id)


def _detached(settings: Settings, execution_id: str, namespace: str, runs_it: str) -> None:
    if settings.json:
        print_json({"execution_id": execution_id, "workflow": namespace})
        return
    settings.err.print(
        f"execution {execution_id} of {namespace} stored; {runs_it} (cloacina-ctl executions show {execution_id})",
        markup=False,
    )
    click.echo(execution_id)


def _resolve(settings: Settings, name: str) -> CatalogEntry:
    """The workflow to run; one of a registered package without an active version is named as such."""
    try:
        return settings.catalog().resolve(name)
    except WorkflowNotFoundError as exc:
        parts = name.split("::")
        if not exc.known and len(parts) == 3 and parts[0] != settings.tenant:
            raise  # another tenant's: refused as such
        inactive = _inactive_package_of("::".join(parts[-2:]), settings)
        if inactive is None:
            raise
        package, versions = inactive
        raise WorkflowNotFoundError(
            f"Workflow {name!r} is in package {package!r}, registered in tenant {settings.tenant!r} but with no "
            f"active version (registered: {', '.join(versions)}). Activate one: "
            f"cloacina-ctl packages activate {package}=={versions[-1]}",
            name=name,
            known=exc.known,
        ) from None


def _inactive_package_of(name: str, settings: Settings) -> tuple[str, list[str]] | None:
    """``(package, its versions)`` of the tenant's inactive package that offers workflow ``name``, if any."""
    for info in settings.host().registry.list_packages():
        if info.active_version is not None:
            continue
        keys = {w.key for v in info.versions for w in v.workflows}
        if name in keys or any(key.split("::")[-1] == name for key in keys):
            return info.name, [v.version for v in info.versions]
    return None


def read_context(value: str | None) -> dict[str, Any]:
    """``--context`` as inline JSON or ``@file``: a JSON object within ``MAX_CONTEXT_BYTES`` and ``MAX_JSON_DEPTH``.

    A file must be a regular file; its size is checked before it is read.
    """
    if value is None:
        return {}
    source, text = "--context", value
    if value.startswith("@"):
        path = Path(value[1:])
        source = str(path)
        text = _read_context_file(path)
    elif len(value) * 4 > MAX_CONTEXT_BYTES and len(value.encode()) > MAX_CONTEXT_BYTES:
        raise context_too_large("--context", len(value.encode()))
    try:
        data = loads_limited(text, source)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"Invalid JSON in {source} at line {exc.lineno}, column {exc.colno} (char {exc.pos}): {exc.msg}. "
            'Pass a JSON object, e.g. --context \'{"key": "value"}\' or --context @context.json.'
        ) from exc
    if not isinstance(data, dict):
        raise UsageError(f"{source} must be a JSON object ({{...}}), not {type(data).__name__}.")
    return data


def _read_context_file(path: Path) -> str:
    def cannot(reason: str) -> UsageError:
        return UsageError(f"Cannot read context file {path}: {reason}. Check the path after '@'.")

    try:
        data = read_regular_file(path, MAX_CONTEXT_BYTES)
    except FileTooLarge as exc:
        raise context_too_large(f"context file {path}", exc.size) from None
    except NotRegularFile as exc:
        raise cannot(f"it is {exc.kind}, not a regular file") from None
    except OSError as exc:
        raise cannot(exc.strerror or str(exc)) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise cannot(f"it is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


async def _run(
    runner: DefaultRunner, entry: CatalogEntry, context: dict[str, object], progress: Progress, settings: Settings
) -> ExecutionResult:
    from ._operate import wait_interruptible

    pm = runner.plugin_manager
    async with runner:
        pm.register(progress)
        try:
            with progress:
                execution_id = await runner.submit(entry, context)
                progress.execution_id = execution_id
                return await wait_interruptible(runner, execution_id, settings, progress)
        finally:
            pm.unregister(progress)
            sys.stderr.flush()


async def _submit(
    runner: DefaultRunner, entry: CatalogEntry, context: dict[str, object], *, distributed: bool = False
) -> str:
    async with runner:
        if distributed:
            return await runner.submit(entry, context, distributed=True)
        return await runner.submit(entry, context, detach=True)


async def _run_distributed(runner: DefaultRunner, entry: CatalogEntry, context: dict[str, object]) -> ExecutionResult:
    async with runner:
        execution_id = await runner.submit(entry, context, distributed=True)
        return await runner.wait(execution_id, poll_s=0.2)
