"""Issue 10, classes 1 and 2 (engine): task code and contexts cannot hang, kill or fool the host.

The hostile tasks run in a real host process (``hostile_tasks_host.py``), so a regression (a host
killed by ``SystemExit``, an ``execute()`` that never returns, a process held open by an abandoned
thread) fails the test instead of taking the test run with it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_workflow import Context, LimitExceeded, task, workflow
from cloacina_workflow.limits import MAX_CONTEXT_BYTES, MAX_JSON_DEPTH

HOST = Path(__file__).with_name("hostile_tasks_host.py")
KINDS = {"SystemExit": "SystemExit(0)", "KeyboardInterrupt": "KeyboardInterrupt", "CancelledError": "CancelledError"}


def run_host(url: str, mode: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(HOST), url, mode], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "host done", done.stdout + done.stderr  # it got to its end and exited by itself
    assert "Traceback" not in done.stderr, done.stderr
    return [json.loads(line) for line in lines[:-1]]


def check(results: list[dict[str, Any]]) -> None:
    by_case = {(r["workflow"], r["kind"]): r for r in results}
    for flavour in ("plain_escape", "async_escape", "async_escape_timed"):
        for kind in ("SystemExit", "KeyboardInterrupt", "CancelledError", "Custom"):
            result = by_case[(flavour, kind)]
            assert result["status"] == "failed", result
            escape = result["tasks"]["escape"]
            assert escape["status"] == "failed"
            assert escape["attempts"] == 1
            shown = KINDS.get(kind, "Custom(custom escape)")
            assert f"task 'escape' raised {shown}, a BaseException that is not an Exception" in escape["error"]
            assert "Tasks must raise Exception subclasses" in escape["error"]
            if flavour == "plain_escape":
                assert result["tasks"]["after"]["status"] == "skipped"
    sleeper = by_case[("stuck", None)]["tasks"]["sleeper"]
    assert sleeper["status"] == "failed"
    assert "ran longer than its timeout of 0.5s and was abandoned" in sleeper["error"]
    big = by_case[("huge_output", None)]["tasks"]["big"]
    assert big["status"] == "failed"
    assert "the output context of task 'big'" in big["error"]
    assert f"more than the limit of {MAX_CONTEXT_BYTES:,} (MAX_CONTEXT_BYTES)" in big["error"]


@pytest.mark.slow
def test_tasks_raising_base_exceptions_fail_their_attempt_and_the_host_exits_promptly(database_url: str) -> None:
    check(run_host(database_url, "local"))


@pytest.mark.slow
@pytest.mark.postgres
def test_a_distributed_worker_survives_tasks_raising_base_exceptions(postgres_schema_url: str) -> None:
    check(run_host(postgres_schema_url, "distributed"))


async def test_the_engines_own_cancellation_still_stops_a_task_and_leaves_it_resumable(tmp_path: Path) -> None:
    started = asyncio.Event()

    @workflow(name="waits", package="hardening")
    class waits:
        @task
        async def forever(ctx: Context) -> None:
            started.set()
            await asyncio.Event().wait()

    url = f"sqlite:///{tmp_path / 'c.db'}"
    runner = DefaultRunner(url, catalog=WorkflowCatalog(), recover=False)
    runner.add_workflow(waits)
    await runner.start()
    execution_id = await runner.submit("waits")
    await asyncio.wait_for(started.wait(), 30)
    await asyncio.wait_for(runner.aclose(cancel=True), 30)
    async with DefaultRunner(url, catalog=WorkflowCatalog(), recover=False) as reader:
        record = await reader.get_execution(execution_id)
    assert record.status == "running"  # abandoned by the engine, not failed: another host resumes it
    [forever] = record.tasks
    assert forever.status != "failed"
    assert all(a.status != "failed" for a in forever.attempts)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("context", "limit"),
    [({"blob": "x" * (MAX_CONTEXT_BYTES + 1)}, "MAX_CONTEXT_BYTES"), (nested(MAX_JSON_DEPTH + 1), "MAX_JSON_DEPTH")],
    ids=["too-large", "too-deep"],
)
async def test_an_initial_context_over_a_limit_is_refused_before_anything_is_stored(
    tmp_path: Path, context: dict[str, Any], limit: str
) -> None:
    @workflow(name="noop", package="hardening")
    class noop:
        @task
        def only(ctx: Context) -> None:
            ctx.set("ran", True)

    async with DefaultRunner(f"sqlite:///{tmp_path / 'c.db'}", catalog=WorkflowCatalog()) as runner:
        runner.add_workflow(noop)
        with pytest.raises(LimitExceeded, match=limit) as refused:
            await runner.execute("noop", context)
        assert refused.value.limit == limit
        assert "the initial context" in str(refused.value)
        with runner.database.read("counting executions") as conn:
            from sqlalchemy import func, select

            from cloacina_host._storage._schema import executions

            assert conn.execute(select(func.count()).select_from(executions)).scalar() == 0
        assert (await runner.execute("noop", {"small": 1})).ok  # the runner is fine
