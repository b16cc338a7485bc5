"""``cloacina-ctl worker``: run the tasks of distributed executions, beside any number of other workers.

Start as many as you like, on as many machines as you like, all with the same PostgreSQL
``--database-url``: they claim ready tasks from it (``SELECT … FOR UPDATE SKIP LOCKED``), hold each
under a lease they renew, and wake on ``LISTEN/NOTIFY``. SIGTERM or SIGINT: claim nothing more,
let running tasks finish for up to ``--grace-seconds``, hand the rest back, exit 0 (a second signal
skips the wait).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from .._defaults import DEFAULT_GRACE_S, DEFAULT_LEASE_S, DEFAULT_POLL_S, DEFAULT_WORKER_CONCURRENCY
from .._engine._distributed import DistributedWorker, require_postgresql
from .._engine._worker_state import WorkerStats
from ._common import Settings, global_options, pass_settings, task_timeout_option
from ._streams import package_output_to_stderr

log = logging.getLogger("cloacina_host.worker")


def _configure_logging(quiet: bool) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("cloacina_host")
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False
    return handler


@click.command("worker")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=DEFAULT_WORKER_CONCURRENCY,
    show_default=True,
    help="Tasks this worker runs at once.",
)
@click.option(
    "--lease-seconds",
    "lease_s",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_LEASE_S,
    show_default=True,
    help="How long a claim holds without renewal (renewed every third of it). A task whose worker stops "
    "renewing is claimed again by another worker after this long.",
)
@click.option(
    "--poll-seconds",
    "poll_s",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_POLL_S,
    show_default=True,
    help="Longest sleep without a notification (in case one is lost).",
)
@click.option(
    "--grace-seconds",
    "grace_s",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE_S,
    show_default=True,
    help="On SIGTERM/SIGINT, how long running tasks may finish before they are handed back.",
)
@task_timeout_option
@click.option("--name", default=None, help="A name for this worker in logs and attempt records [default: random].")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors, not a line per task.")
@global_options
@pass_settings
def worker_command(
    settings: Settings,
    concurrency: int,
    lease_s: float,
    poll_s: float,
    grace_s: float,
    default_timeout_s: float | None,
    name: str | None,
    quiet: bool,
) -> None:
    """Run the tasks of distributed executions stored in a PostgreSQL database.

    Executions are submitted with `cloacina-ctl run WORKFLOW --distributed` (or
    `DefaultRunner.submit(..., distributed=True)`). Any number of workers, on any machines, share
    the work: each task runs in one worker at a time; a task whose worker dies is run again by
    another once its lease lapses. Embedded workflows need their code importable here; installed
    plugins are discovered; registered packages are installed from the database on first use.
    """
    early: list[int] = []  # a signal before the loop runs (discovery can take a while) still stops it cleanly
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _frame: early.append(received))
    require_postgresql(settings.database_url, settings.home, "cloacina-ctl worker")
    handler = _configure_logging(quiet)
    try:
        worker = DistributedWorker(
            settings.database_url,
            catalog=settings.catalog(),
            home=settings.home,
            tenant=settings.tenant,
            concurrency=concurrency,
            lease_s=lease_s,
            poll_s=poll_s,
            grace_s=grace_s,
            default_timeout_s=default_timeout_s,
            name=name,
            # the command's one database (the registry of the tenant reads it too); the worker
            # retries opening it while the database cannot be reached
            database_opener=lambda: settings.database(pool_size=worker.db_threads),
        )
        with package_output_to_stderr():  # and a closed stdout or stderr neither stops nor blocks it
            stats = asyncio.run(_serve(worker, early))
        log.warning(
            "worker %s stopped: %d claimed, %d completed, %d failed, %d retried, %d taken over, %d lost, %d released",
            worker.owner,
            stats.claimed,
            stats.completed,
            stats.failed,
            stats.retried,
            stats.reclaimed,
            stats.lost,
            stats.released,
        )
    finally:
        logging.getLogger("cloacina_host").removeHandler(handler)


async def _serve(worker: DistributedWorker, early: list[int]) -> WorkerStats:
    """Run ``worker`` until SIGTERM/SIGINT; ``early`` holds signals received before the loop ran."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if worker.stopping:
            log.warning("%s again: handing running tasks back now", name)
            worker.stop(now=True)
            return
        log.warning(
            "%s: claiming nothing more; running tasks may finish for up to %gs (send %s again to hand them back now)",
            name,
            worker.grace_s,
            name,
        )
        worker.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    for received in early:
        on_signal(received)
    try:
        return await worker.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
