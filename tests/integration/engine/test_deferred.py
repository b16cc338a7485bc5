"""Deferred tasks (``TaskError.Deferred``) in the durable engine and the distributed worker.

A deferral is stored (the task ``deferred``, its time as ``ready_at``, the attempt ``deferred``), so it
survives a host killed while the task waits; the wait holds no place under ``max_concurrent_tasks``
and no distributed worker's slot; a cancel ends the waiting task; ``executions show`` and ``watch``
say the task is deferred and until when. (The scenario table in ``tests/drivers`` checks that every
driver ends deferrals, their retries and the cap the same way.)
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_host._engine._distributed import DistributedWorker
from cloacina_host._storage import ExecutionRecord, open_database
from cloacina_host._storage import _queries as q
from cloacina_host._storage._records import TaskRecord
from cloacina_workflow import Context, TaskError, task, workflow

HOST = Path(__file__).with_name("deferring_host.py")
LONG_S = 600.0  # a deferral no test waits for: the task is cancelled, or the test ends, first


@workflow(name="waits", package="defer_tests")
class waits:
    @task
    async def wait(ctx: Context) -> None:
        raise TaskError.Deferred(seconds=LONG_S, reason="the export is not there yet")

    @task(dependencies=["wait"])
    def after(ctx: Context) -> None: ...


@workflow(name="quick", package="defer_tests")
class quick:
    @task
    def only(ctx: Context) -> None:
        ctx.set("ran", True)


def _catalog() -> WorkflowCatalog:
    catalog = WorkflowCatalog()
    catalog.add_workflow(waits)
    catalog.add_workflow(quick)
    return catalog


def _stored(url: str, execution_id: str | None = None) -> ExecutionRecord:
    """The stored execution ``execution_id`` (the only one when ``None``), read as another process would."""
    from sqlalchemy import select

    from cloacina_host._storage._schema import executions

    db = open_database(url, migrate_schema=False)
    try:
        with db.read("reading an execution") as conn:
            if execution_id is None:
                [execution_id] = [str(r[0]) for r in conn.execute(select(executions.c.id))]
            record = q.get_execution(conn, execution_id)
    finally:
        db.dispose()
    assert record is not None
    return record


def _until(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


async def _until_async(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Wait for ``check()`` (run in a thread: it reads the database) to hold."""
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _task(record: ExecutionRecord, task_id: str) -> TaskRecord:
    return next(t for t in record.tasks if t.task_id == task_id)


def _deferred(url: str, execution_id: str | None, task_id: str) -> Callable[[], bool]:
    return lambda: _task(_stored(url, execution_id), task_id).status == "deferred"


@pytest.mark.slow
def test_a_deferral_survives_a_killed_host_and_the_next_host_runs_the_task_at_its_time(
    database_url: str, tmp_path: Path
) -> None:
    counters = tmp_path / "counters"
    counters.mkdir()
    env = {**os.environ, "CLOACINA_HOME": str(tmp_path / "home")}
    host = subprocess.Popen(
        [sys.executable, str(HOST), database_url, str(counters), "start", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        _until(lambda: (counters / "wait").exists() or host.poll() is not None, "task 'wait' to run")
        _until(lambda: host.poll() is not None or _deferred(database_url, None, "wait")(), "the deferral's commit")
        assert host.poll() is None, host.communicate()[1].decode()
        host.send_signal(signal.SIGKILL)  # while the task waits for its time
        host.communicate()
    finally:
        if host.poll() is None:
            host.kill()
            host.communicate()
    assert host.returncode == -signal.SIGKILL
    left = _stored(database_url)
    wait = _task(left, "wait")
    [deferral] = wait.attempts
    assert (left.status, wait.status, deferral.status) == ("running", "deferred", "deferred")
    assert wait.error == deferral.error
    assert deferral.error is not None
    assert deferral.error.startswith("deferred until ")
    assert deferral.error.endswith("Z: the export is not there yet")
    assert wait.ready_at is not None
    assert deferral.finished_at is not None
    assert wait.ready_at >= deferral.finished_at + 2.9  # its time, three seconds on, is what was stored
    assert (counters / "wait").read_text() == "1"  # killed before the task ran again

    restarted = subprocess.run(
        [sys.executable, str(HOST), database_url, str(counters), "resume"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert restarted.returncode == 0, restarted.stderr
    [result] = json.loads(restarted.stdout)
    assert result["status"] == "completed"
    assert result["context"] == {"defer_s": 3.0, "wait_runs": 2, "after_runs": 1}
    ended = _stored(database_url, result["execution_id"])
    wait = _task(ended, "wait")
    assert [(a.attempt, a.status) for a in wait.attempts] == [(1, "deferred"), (2, "completed")]
    assert wait.attempts[1].started_at >= left.tasks[0].ready_at - 0.05  # not before the time stored
    assert result["tasks"]["wait"] == {
        "status": "completed",
        "attempts": 2,
        "duration_s": wait.duration_s,
        "error": None,
    }


async def test_a_deferred_task_holds_no_place_under_max_concurrent_tasks_and_a_cancel_ends_it(
    database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    async with DefaultRunner(
        database_url, catalog=_catalog(), home=home, recover=False, max_concurrent_tasks=1
    ) as runner:
        waiting = await runner.submit("waits")
        await _until_async(_deferred(database_url, waiting, "wait"), "the deferral")
        # the only place is free while the task waits: another execution runs meanwhile
        other = await asyncio.wait_for(runner.execute("quick"), 60)
        assert (other.status, other.context.to_dict()) == ("completed", {"ran": True})
        shown = await asyncio.to_thread(_show, database_url, home, waiting)
        cancelled = await runner.cancel(waiting, actor="tester")
        result = await asyncio.wait_for(runner.wait(waiting), 60)
    assert cancelled.ended
    assert result.status == "cancelled"
    assert {t: (o.status, o.attempts) for t, o in result.tasks.items()} == {
        "wait": ("cancelled", 1),
        "after": ("cancelled", 0),
    }
    _check_shown(shown)
    record = _stored(database_url, waiting)
    assert [(a.attempt, a.status) for a in _task(record, "wait").attempts] == [(1, "deferred")]


def _show(url: str, home: Path, execution_id: str) -> tuple[dict[str, object], str]:
    """``executions show --json`` and ``executions show`` of ``execution_id``, as a user runs them."""
    env = {**os.environ, "CLOACINA_DATABASE_URL": url, "CLOACINA_HOME": str(home), "COLUMNS": "200"}
    shown = [
        subprocess.run(
            [sys.executable, "-m", "cloacina_host", "executions", "show", execution_id, *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for extra in (["--json"], [])
    ]
    for s in shown:
        assert s.returncode == 0, s.stderr
    return json.loads(shown[0].stdout), shown[1].stdout


def _check_shown(shown: tuple[dict[str, object], str]) -> None:
    data, text = shown
    tasks = {t["task_id"]: t for t in data["tasks"]}  # type: ignore[attr-defined]
    wait = tasks["wait"]
    assert wait["status"] == "deferred"
    assert wait["ready_at"] is not None  # when it runs again
    assert wait["error"].startswith(f"deferred until {wait['ready_at'][:19]}")
    assert wait["error"].endswith(": the export is not there yet")
    assert [(a["attempt"], a["status"], a["error"]) for a in wait["attempts"]] == [(1, "deferred", wait["error"])]
    assert tasks["after"]["status"] == "pending"
    assert tasks["after"]["ready_at"] is None
    [row] = [line for line in text.splitlines() if line.startswith("wait ")]
    assert "deferred" in row.split(), text
    assert "the export is not there yet" in row, text


def test_watch_shows_a_deferred_task_with_its_time(tmp_path: Path) -> None:
    """``executions watch`` of an execution whose task waits: the line says deferred and until when."""
    url, home = f"sqlite:///{tmp_path / 'db'}", tmp_path / "home"
    env = {**os.environ, "CLOACINA_DATABASE_URL": url, "CLOACINA_HOME": str(home), "PYTHONUNBUFFERED": "1"}

    async def start() -> tuple[DefaultRunner, str]:
        runner = DefaultRunner(url, catalog=_catalog(), home=home, recover=False)
        await runner.start()
        execution_id = await runner.submit("waits")
        await _until_async(_deferred(url, execution_id, "wait"), "the deferral")
        return runner, execution_id

    loop = asyncio.new_event_loop()
    try:
        runner, execution_id = loop.run_until_complete(start())
        watch = subprocess.Popen(
            [sys.executable, "-m", "cloacina_host", "executions", "watch", execution_id],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in watch.stdout or ()], daemon=True)
        reader.start()
        try:
            seen: list[str] = []
            deadline = time.monotonic() + 60
            while not any(line.startswith("wait: deferred") for line in seen):
                try:
                    seen.append(lines.get(timeout=max(0.01, deadline - time.monotonic())))
                except queue.Empty:
                    pytest.fail(f"watch never showed the deferral; it printed {seen}")
            loop.run_until_complete(runner.cancel(execution_id))
            watch.wait(timeout=60)
            reader.join(timeout=10)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
            reader.join(timeout=10)
            if watch.stdout is not None:
                watch.stdout.close()
        loop.run_until_complete(runner.aclose())
    finally:
        loop.close()
    [line] = [s for s in seen if s.startswith("wait: deferred")]
    assert line.startswith("wait: deferred (attempt 1) — deferred until ")
    assert line.rstrip().endswith("Z: the export is not there yet")
    while not lines.empty():
        seen.append(lines.get())
    assert any(s.startswith("wait: cancelled") for s in seen), seen


@pytest.mark.postgres
async def test_a_deferred_task_goes_back_to_the_queue_releasing_the_distributed_workers_slot(
    postgres_schema_url: str, tmp_path: Path
) -> None:
    url, home = postgres_schema_url, tmp_path / "home"
    async with DefaultRunner(url, catalog=_catalog(), home=home, recover=False) as submitter:
        waiting = await submitter.submit("waits", distributed=True)
        worker = DistributedWorker(url, catalog=_catalog(), home=str(home), concurrency=1, poll_s=0.5)
        serving = asyncio.ensure_future(worker.run())
        try:
            await _until_async(_deferred(url, waiting, "wait"), "the deferral")
            record = _stored(url, waiting)
            wait = _task(record, "wait")
            assert wait.attempts[0].status == "deferred"
            assert wait.ready_at is not None
            assert wait.ready_at > time.time() + LONG_S / 2
            # the claim is released: the worker's one slot runs another execution meanwhile
            other_id = await submitter.submit("quick", distributed=True)
            other = await asyncio.wait_for(submitter.wait(other_id, poll_s=0.05), 60)
            assert (other.status, other.context.to_dict()) == ("completed", {"ran": True})
            assert worker.stats.deferred == 1
            cancelled = await submitter.cancel(waiting, actor="tester")
            result = await asyncio.wait_for(submitter.wait(waiting, poll_s=0.05), 60)
        finally:
            worker.stop(now=True)
            await asyncio.wait_for(serving, 30)
    assert cancelled.ended
    assert result.status == "cancelled"
    assert {t: (o.status, o.attempts) for t, o in result.tasks.items()} == {
        "wait": ("cancelled", 1),
        "after": ("cancelled", 0),
    }
    stored = _stored(url, waiting)
    assert [(a.attempt, a.status) for a in _task(stored, "wait").attempts] == [(1, "deferred")]
    assert _task(stored, "wait").ready_at is None
