"""``cloacina-ctl executions cancel|retry|rerun|watch``: operate stored executions, wherever they run.

``cancel`` stores the request (the host running the execution stops it; one no host runs is ended
at once); ``retry`` runs a finished execution's failed, skipped and cancelled tasks again; ``rerun``
starts a new execution with the same input; ``watch`` follows any execution's tasks from the
database. Ctrl-C in ``run`` (``wait_interruptible``) cancels the execution or leaves it to a ``serve``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from . import _complete as complete
from ._common import (
    Settings,
    global_options,
    max_concurrent_tasks_option,
    pass_settings,
    print_json,
    task_timeout_option,
)

if TYPE_CHECKING:
    from rich.console import Console

    from .._engine import DefaultRunner, ExecutionResult
    from .._storage import ExecutionRecord
    from ._progress import Progress

__all__ = ["COMMANDS", "Interrupted", "wait_interruptible"]

#: how often ``watch`` reads the execution
WATCH_POLL_S = 0.3
#: exit status after Ctrl-C (128 + SIGINT), as shells report it
EXIT_INTERRUPTED = 130


class Interrupted(BaseException):
    """Ctrl-C during ``run``: what was done about the execution (``message``); exit status 130.

    A ``BaseException``: leaving the runner's ``async with`` abandons what still runs (resumable) instead
    of waiting for it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _find(settings: Settings, execution_id: str, *, read_only: bool) -> ExecutionRecord:
    from .._engine._history import find_execution

    return find_execution(
        settings.database_url,
        home=settings.home,
        tenant=settings.tenant,
        execution_id=execution_id,
        database=settings.database(read_only=read_only),
    )


def _runner(settings: Settings, max_concurrent_tasks: int, default_timeout_s: float | None) -> DefaultRunner:
    from .._engine import DefaultRunner

    return DefaultRunner(
        settings.database_url,
        catalog=settings.catalog(),
        home=settings.home,
        tenant=settings.tenant,
        max_concurrent_tasks=max_concurrent_tasks,
        default_timeout_s=default_timeout_s,
        recover=False,
        database=settings.database(),
    )


def report_result(settings: Settings, result: dict[str, Any]) -> None:
    """What ``run`` prints at the end of ``result`` (``ExecutionResult.to_json()``): a summary on stderr, the
    final context (or the result) on stdout; a failed or cancelled execution raises, for exit status 1."""
    from ._progress import format_duration
    from ._run import ExecutionFailedError

    if settings.json:
        print_json(result)
    else:
        summary = f"execution {result['execution_id']} of {result['workflow']} {result['status']}"
        settings.err.print(f"{summary} in {format_duration(result['duration_s'])}", markup=False)
        print_json(result["context"])
    if result["status"] != "completed":
        raise ExecutionFailedError(result["execution_id"], result["error"])


def result_of(record: dict[str, Any]) -> dict[str, Any]:
    """``ExecutionResult.to_json()`` of an execution's JSON view (``executions show --json``), as
    ``ExecutionResult.from_record`` gives it."""
    context = record["final_context"] if record["final_context"] is not None else record["context"]
    return {
        "execution_id": record["id"],
        "workflow": record["workflow"],
        "status": record["status"],
        "error": record["error"],
        "duration_s": record["duration_s"],
        "context": context if context is not None else {},
        "tasks": {
            t["task_id"]: {
                "status": t["status"],
                "attempts": len(t["attempts"]),
                "duration_s": t["duration_s"] or 0.0,
                "error": t["error"],
            }
            for t in record["tasks"]
        },
    }


def follow(settings: Settings, record: dict[str, Any]) -> dict[str, Any] | None:
    """Show execution ``record``'s tasks (``_Watch``) as they change, read again every ``WATCH_POLL_S``
    until it has ended: its last view. Ctrl-C stops following (None), the execution goes on."""
    from ._executions import execution_view

    view = _Watch(settings.err, live=settings.err.is_terminal)
    try:
        with view:
            while True:
                view.show(record)
                if record["status"] not in ("running", "queued"):
                    return record
                time.sleep(WATCH_POLL_S)
                record = execution_view(settings, record["id"])
    except KeyboardInterrupt:
        settings.err.print(f"stopped watching; execution {record['id']} goes on", markup=False)
        return None


def follow_to_end(settings: Settings, execution_id: str) -> None:
    """``run`` through the server after submitting: follow the execution, then report as ``run`` does
    (Ctrl-C: exit status 130, the execution goes on in the server)."""
    from ._executions import execution_view

    record = follow(settings, execution_view(settings, execution_id))
    if record is None:
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    report_result(settings, result_of(record))


def refuse_remote(settings: Settings, what: str, given: bool) -> None:
    """``UsageError`` for an option that has no meaning through ``--server`` (the server decides it)."""
    if given and settings.server is not None:
        from .._errors import UsageError

        raise UsageError(f"{what} is not available through --server: the server runs executions its own way.")


# -- cancel -----------------------------------------------------------------------------------------


@click.command("cancel")
@click.argument("execution_id", metavar="ID", shell_complete=complete.executions)
@global_options
@pass_settings
def cancel_command(settings: Settings, execution_id: str) -> None:
    """Cancel execution ID (or a unique prefix of it), wherever it runs.

    The host running it stops it (at once if it is this process, else at its next lease renewal):
    tasks not started never start, running ones are stopped, and the execution ends `cancelled`.
    One no host runs (queued, its host gone, or distributed) is ended now. Exits 1 if it has
    already ended, 3 if there is no such execution.
    """
    from ._executions import execution_view

    record = execution_view(settings, execution_id, read_only=False)
    client = settings.remote()
    if client is not None:
        from ._client import path

        outcome = client.post(path("executions", record["id"], "cancel"))
    else:
        from .._engine._operate import actor_name, cancel_execution

        found = cancel_execution(
            settings.database(), tenant=settings.tenant, execution_id=record["id"], actor=actor_name()
        )
        outcome = {"execution_id": record["id"], "ended": found.ended, "owner": found.owner, "status": found.status}
    if settings.json:
        print_json(outcome)
        return
    if outcome["ended"]:
        settings.err.print(f"execution {record['id']} of {record['workflow']} {outcome['status']}", markup=False)
    else:
        settings.err.print(
            f"cancel of execution {record['id']} requested; {outcome['owner']}, the host running it, stops it at "
            f"its next lease renewal (follow it: cloacina-ctl executions watch {record['id']})",
            markup=False,
        )


# -- retry and rerun ---------------------------------------------------------------------------------


@click.command("retry")
@click.argument("execution_id", metavar="ID", shell_complete=complete.executions)
@click.option("--latest", is_flag=True, help="Run on the package's active version, not the one it started with.")
@click.option(
    "--detach", is_flag=True, help="Only store the retry; a `cloacina-ctl serve` sharing the database runs it."
)
@max_concurrent_tasks_option
@task_timeout_option
@global_options
@pass_settings
def retry_command(
    settings: Settings,
    execution_id: str,
    latest: bool,
    detach: bool,
    max_concurrent_tasks: int,
    default_timeout_s: float | None,
) -> None:
    """Run the failed, skipped and cancelled tasks of finished execution ID again.

    Completed tasks keep their outputs; the attempt numbers of the others go on. It runs on the
    package version the execution started with (--latest: the active one, refused if its tasks
    changed), here with progress like `run` (exits like `run`), or with --detach in a `serve`.
    """
    client = settings.remote()
    if client is not None:
        from ._client import path

        found = _remote_record(settings, execution_id)
        _start_remote(
            settings,
            found,
            detach,
            lambda: client.post(path("executions", found["id"], "retry"), {"latest": latest})["execution_id"],
            what="retry of",
        )
        return
    record = _find(settings, execution_id, read_only=False)
    runner = _runner(settings, max_concurrent_tasks, default_timeout_s)

    async def go(progress: Progress | None) -> str | ExecutionResult:
        async with runner:
            if progress is None:
                return await runner.retry(record.id, latest=latest, detach=True)
            runner.plugin_manager.register(progress)
            try:
                with progress:
                    await runner.retry(record.id, latest=latest)
                    return await wait_interruptible(runner, record.id, settings, progress)
            finally:
                runner.plugin_manager.unregister(progress)

    _start(settings, record, detach, go, what="retry of")


@click.command("rerun")
@click.argument("execution_id", metavar="ID", shell_complete=complete.executions)
@click.option("--detach", is_flag=True, help="Only store the new execution; a `cloacina-ctl serve` runs it.")
@click.option("--distributed", is_flag=True, help="PostgreSQL: run it on `cloacina-ctl worker` processes.")
@max_concurrent_tasks_option
@task_timeout_option
@global_options
@pass_settings
def rerun_command(
    settings: Settings,
    execution_id: str,
    detach: bool,
    distributed: bool,
    max_concurrent_tasks: int,
    default_timeout_s: float | None,
) -> None:
    """Start a new execution of execution ID's workflow with the same input (as `run` would: its active
    version); the new one records which it reran. Options as for `run`."""
    client = settings.remote()
    if client is not None:
        from ._client import path

        refuse_remote(settings, "--distributed", distributed)
        found = _remote_record(settings, execution_id)
        _start_remote(
            settings,
            found,
            detach,
            lambda: client.post(path("executions", found["id"], "rerun"))["execution_id"],
            what="rerun of",
        )
        return
    record = _find(settings, execution_id, read_only=False)
    runner = _runner(settings, max_concurrent_tasks, default_timeout_s)
    if distributed:
        from .._engine._distributed import require_postgresql

        require_postgresql(settings.database_url, settings.home, "cloacina-ctl executions rerun --distributed")

    async def go(progress: Progress | None) -> str | ExecutionResult:
        async with runner:
            if progress is None or distributed:
                new_id = await runner.rerun(record.id, detach=detach, distributed=distributed)
                return new_id if detach else await runner.wait(new_id, poll_s=0.2)
            runner.plugin_manager.register(progress)
            try:
                with progress:
                    new_id = await runner.rerun(record.id)
                    progress.execution_id = new_id
                    return await wait_interruptible(runner, new_id, settings, progress)
            finally:
                runner.plugin_manager.unregister(progress)

    _start(settings, record, detach, go, what="rerun of")


def _start(settings: Settings, record: ExecutionRecord, detach: bool, go: Any, *, what: str) -> None:
    """Run ``go(progress)`` (``progress`` None when detached) and report as ``run`` does."""
    from ._progress import Progress
    from ._streams import package_output_to_stderr

    with package_output_to_stderr():
        progress = None
        if not detach:
            workflow = settings.catalog().resolve(record.namespace).workflow
            err = settings.err
            progress = Progress(workflow, err, live=err.is_terminal, plain=not settings.json)
            progress.execution_id = record.id
            for t in record.tasks:  # what a retry keeps shows as it ended
                if t.status == "completed" and t.task_id in progress.rows and what.startswith("retry"):
                    progress.rows[t.task_id].status = "completed"
        try:
            outcome = asyncio.run(go(progress))
        except Interrupted as exc:
            settings.err.print(exc.message, markup=False)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    if isinstance(outcome, str):
        _detached(settings, what, record.id, record.namespace, outcome, "a `cloacina-ctl serve` sharing this database")
        return
    report_result(settings, outcome.to_json())


def _detached(settings: Settings, what: str, execution_id: str, workflow: str, new_id: str, runs_it: str) -> None:
    """What a detached retry or rerun prints: the new id (JSON: with the workflow)."""
    if settings.json:
        print_json({"execution_id": new_id, "workflow": workflow, "detached": True})
        return
    settings.err.print(
        f"{what} execution {execution_id} stored as {new_id}; {runs_it} runs it "
        f"(cloacina-ctl executions watch {new_id})",
        markup=False,
    )
    click.echo(new_id)


def _remote_record(settings: Settings, execution_id: str) -> dict[str, Any]:
    from ._executions import execution_view

    return execution_view(settings, execution_id)


def _start_remote(
    settings: Settings, record: dict[str, Any], detach: bool, submit: Callable[[], str], *, what: str
) -> None:
    """A retry or rerun through the server: ``submit`` it, then follow it to its end as ``run`` does."""
    new_id = submit()
    if detach:
        assert settings.server is not None
        _detached(settings, what, record["id"], record["workflow"], new_id, f"the server at {settings.server}")
        return
    follow_to_end(settings, new_id)


# -- Ctrl-C while an execution runs in this process --------------------------------------------------


async def wait_interruptible(
    runner: DefaultRunner, execution_id: str, settings: Settings, progress: Progress | None = None
) -> ExecutionResult:
    """``runner.wait(execution_id)``; on Ctrl-C, cancel the execution or leave it to a ``serve``.

    On a terminal it asks (default: cancel); otherwise it cancels. Either way ``Interrupted`` says which.
    """
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    try:
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here (Windows, another thread)
        return await runner.wait(execution_id)
    waiting = asyncio.ensure_future(runner.wait(execution_id))
    stop = asyncio.ensure_future(interrupted.wait())
    try:
        await asyncio.wait({waiting, stop}, return_when=asyncio.FIRST_COMPLETED)
        if waiting.done():
            return waiting.result()
        if progress is not None:
            progress.__exit__(None, None, None)  # the live table stops: the question is readable
        cancel = True
        if sys.stdin.isatty() and settings.err.is_terminal:
            cancel = await asyncio.to_thread(_ask, settings.err, execution_id)
        if cancel:
            await runner.cancel(execution_id)
            result = await waiting
            raise Interrupted(f"interrupted: execution {execution_id} was cancelled (it ended {result.status})")
        waiting.cancel()
        raise Interrupted(
            f"interrupted: execution {execution_id} was left running; a `cloacina-ctl serve` sharing this database "
            f"resumes it (cloacina-ctl executions watch {execution_id}, or cancel it: "
            f"cloacina-ctl executions cancel {execution_id})"
        )
    finally:
        stop.cancel()
        loop.remove_signal_handler(signal.SIGINT)


def _ask(err: Console, execution_id: str) -> bool:
    """Whether to cancel (True) or leave the execution to a ``serve`` (False); Enter cancels."""
    err.print(f"\nCtrl-C: execution {execution_id} is still running.", markup=False)
    answer = click.prompt(
        "Cancel it, or leave it for a `cloacina-ctl serve` to finish?",
        type=click.Choice(["cancel", "leave"]),
        default="cancel",
        err=True,
    )
    return bool(answer == "cancel")


# -- watch --------------------------------------------------------------------------------------------


@click.command("watch")
@click.argument("execution_id", metavar="ID", shell_complete=complete.executions)
@global_options
@pass_settings
def watch_command(settings: Settings, execution_id: str) -> None:
    """Follow execution ID's tasks live, wherever it runs (this machine, a `serve`, distributed workers).

    Read from the database: a live table on a terminal, one line per change otherwise. Ends when the
    execution ends, exiting as `run` does (0 completed, 1 failed or cancelled); Ctrl-C stops watching
    and leaves the execution running.
    """
    from ._executions import execution_view

    record = follow(settings, execution_view(settings, execution_id))
    if record is not None:
        report_result(settings, result_of(record))


class _Watch:
    """The tasks of a stored execution: redrawn on a terminal, one line per change otherwise."""

    def __init__(self, console: Console, *, live: bool) -> None:
        from rich.live import Live

        self.console = console
        self._seen: dict[str, tuple[str, int]] = {}
        self._status: str | None = None
        self._live = Live(console=console, auto_refresh=False) if live else None

    def __enter__(self) -> _Watch:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def show(self, record: dict[str, Any]) -> None:
        """Execution ``record`` (its JSON view, ``executions show --json``) as it is now."""
        if self._live is not None:
            self._live.update(self._table(record), refresh=True)
            return
        status = record["status"]
        if status != self._status:
            self._status = status
            self.console.print(f"execution {record['id']} of {record['workflow']}: {status}", markup=False)
        for t in record["tasks"]:
            now = (t["status"], len(t["attempts"]))
            if self._seen.get(t["task_id"], ("pending", 0)) == now:
                continue
            self._seen[t["task_id"]] = now
            suffix = f" — {t['error']}" if t["error"] and t["status"] != "completed" else ""
            self.console.print(f"{t['task_id']}: {t['status']} (attempt {len(t['attempts'])}){suffix}", markup=False)

    def _table(self, record: dict[str, Any]) -> Any:
        from rich.table import Table
        from rich.text import Text

        from ._progress import _STYLE, format_duration
        from ._text import seconds

        title = f"{record['workflow']} {record['id']}: {record['status']}"
        table = Table(box=None, pad_edge=False, title=title)
        for column in ("TASK", "STATUS", "ATTEMPT", "DURATION", ""):
            table.add_column(column, no_wrap=column != "", overflow="fold" if column == "" else "ellipsis")
        now = time.time()
        for t in record["tasks"]:
            duration = t["duration_s"]
            started = seconds(t["started_at"])
            if duration is None and started is not None and t["status"] == "running":
                duration = now - started
            table.add_row(
                t["task_id"],
                Text(t["status"], style=_STYLE.get(t["status"], "")),
                str(len(t["attempts"]) or "-"),
                format_duration(duration),
                t["error"] or "" if t["status"] != "completed" else "",
            )
        return table


COMMANDS = [cancel_command, retry_command, rerun_command, watch_command]
