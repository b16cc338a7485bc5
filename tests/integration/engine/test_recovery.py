"""Recovery: a host killed mid-execution leaves it to the next host, which finishes it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_workflow import Context, task, workflow

HOST = Path(__file__).with_name("recovery_host.py")


@pytest.mark.slow
def test_a_sigkilled_host_resumes_on_restart_and_never_reruns_completed_tasks(
    database_url: str, tmp_path: Path, start_committed: Callable[[str, str], bool], counter: Callable[[Path, str], int]
) -> None:
    counters = tmp_path / "counters"
    counters.mkdir()
    env = {**os.environ, "CLOACINA_HOME": str(tmp_path / "home")}
    host = subprocess.Popen(
        [sys.executable, str(HOST), database_url, str(counters), "start"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not (counters / "second-started").exists():
            if host.poll() is not None:
                _, err = host.communicate()
                pytest.fail(f"the host exited ({host.returncode}) before task 'second' started:\n{err.decode()}")
            if time.monotonic() > deadline:
                pytest.fail("task 'second' never started")
            time.sleep(0.02)
        # The engine records an attempt's start in the next group commit instead of waiting for it before
        # running the task (module docstring of _execution), so the marker can precede that commit; killing
        # the host in between would lose the interrupted attempt's record. Kill once it is committed.
        while not start_committed(database_url, "second"):
            if time.monotonic() > deadline:
                pytest.fail("the start of task 'second' was never committed")
            time.sleep(0.02)
        host.send_signal(signal.SIGKILL)
        host.communicate()
    finally:
        if host.poll() is None:
            host.kill()
            host.communicate()
    assert host.returncode == -signal.SIGKILL
    assert (counter(counters, "first"), counter(counters, "second"), counter(counters, "third")) == (1, 1, 0)

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
    assert result["context"] == {"input": 42, "first_runs": 1, "second_runs": 2, "third_runs": 1}
    # the completed task never ran again; the one that was running ran again; the rest ran once
    assert (counter(counters, "first"), counter(counters, "second"), counter(counters, "third")) == (1, 2, 1)

    async def stored() -> list[tuple[str, str, list[tuple[int, str]]]]:
        async with DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False) as runner:
            record = await runner.get_execution(result["execution_id"])
        assert record.status == "completed"
        assert record.lease_owner is None
        return [(t.task_id, t.status, [(a.attempt, a.status) for a in t.attempts]) for t in record.tasks]

    assert asyncio.run(stored()) == [
        ("first", "completed", [(1, "completed")]),
        ("second", "completed", [(1, "interrupted"), (2, "completed")]),
        ("third", "completed", [(1, "completed")]),
    ]


async def test_a_live_owner_keeps_its_execution_and_an_abandoned_one_is_resumed(database_url: str) -> None:
    runs = {"a": 0, "b": 0, "c": 0}
    b_started = asyncio.Event()

    @workflow(name="resumable")
    class resumable:
        @task
        def a(ctx: Context) -> None:
            runs["a"] += 1

        @task(dependencies=["a"])
        async def b(ctx: Context) -> None:
            runs["b"] += 1
            if runs["b"] == 1:
                b_started.set()
                await asyncio.sleep(300)
            ctx.set("b", runs["b"])

        @task(dependencies=["b"])
        def c(ctx: Context) -> None:
            runs["c"] += 1

    def runner(recover: bool) -> DefaultRunner:
        r = DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=recover)
        r.add_workflow(resumable)
        return r

    first = runner(recover=False)
    await first.start()
    execution_id = await first.submit(resumable)
    await b_started.wait()

    bystander = runner(recover=True)  # the owner is alive and its lease current: hands off
    async with bystander:
        assert bystander.active_execution_ids == []

    await first.aclose(cancel=True)  # abandoned, lease released: the next runner takes it at once

    async with runner(recover=True) as second:
        assert second.active_execution_ids == [execution_id]
        result = await second.wait(execution_id)
        record = await second.get_execution(execution_id)
    assert result.ok
    assert result.context.get("b") == 2
    assert runs == {"a": 1, "b": 2, "c": 1}
    attempts = {t.task_id: [a.status for a in t.attempts] for t in record.tasks}
    assert attempts == {"a": ["completed"], "b": ["interrupted", "completed"], "c": ["completed"]}
    assert result.tasks["b"].attempts == 2
