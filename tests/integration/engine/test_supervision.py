"""Issue 11, item 5: background loops are supervised, and concurrency holds under timeouts.

A runner whose lease renewal keeps failing, or whose group-commit writer thread dies, stops and
says why (``execute``/``wait`` raise ``LoopDiedError`` naming the loop) instead of running on with
lapsed leases. A plain task abandoned at its timeout keeps its place under ``max_concurrent_tasks``
until its thread returns, and a task's timeout counts from when it starts, not from when it queued.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from sqlalchemy import create_engine

from cloacina_host import DefaultRunner, StorageError, WorkflowCatalog
from cloacina_host._engine._supervise import LoopDiedError
from cloacina_workflow import Context, task, workflow

DEADLINE_S = 30.0


def make_runner(database_url: str, **kwargs: object) -> DefaultRunner:
    return DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False, **kwargs)  # type: ignore[arg-type]


def rename_table(database_url: str, table: str, to: str) -> None:
    """Break the database under the runner: its queries on ``table`` fail from now on."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {to}")
    finally:
        engine.dispose()


def blocking_workflow(started: threading.Event, release: threading.Event) -> object:
    @workflow(name="held", package="supervision")
    class held:
        @task
        def blocks(ctx: Context) -> None:
            started.set()
            release.wait(DEADLINE_S)

    return held


async def test_a_runner_whose_lease_renewal_keeps_failing_stops_and_says_why(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    started, release = threading.Event(), threading.Event()
    held = blocking_workflow(started, release)
    try:
        async with make_runner(database_url, lease_s=0.6) as runner:
            execution_id = await runner.submit(held)  # type: ignore[arg-type]
            await asyncio.to_thread(started.wait, DEADLINE_S)
            rename_table(database_url, "executions", "executions_gone")  # every renewal fails from now on
            with caplog.at_level(logging.ERROR, logger="cloacina_host.engine"), pytest.raises(LoopDiedError) as info:
                await asyncio.wait_for(runner.wait(execution_id), DEADLINE_S)
            with pytest.raises(LoopDiedError):  # it starts nothing more
                await runner.submit(held)  # type: ignore[arg-type]
            assert runner.active_execution_ids == []
    finally:
        release.set()
    message = str(info.value)
    assert info.value.loop == "lease renewal"
    assert info.value.exit_status == 2
    assert message.startswith(f"The runner {runner.owner} stopped: its lease renewal loop died (the leases could not")
    assert "longer than a lease (0.6 s)" in message
    assert "executions" in message  # the database's reason
    assert "a host resumes them once their leases lapse" in message
    assert any(r.getMessage() == message for r in caplog.records)


async def test_a_runner_whose_writer_thread_dies_stops_and_says_why(database_url: str) -> None:
    started, release = threading.Event(), threading.Event()
    held = blocking_workflow(started, release)
    try:
        async with make_runner(database_url) as runner:
            execution_id = await runner.submit(held)  # type: ignore[arg-type]
            await asyncio.to_thread(started.wait, DEADLINE_S)
            # a write the writer cannot even sort into a batch (a bug's shape): its thread dies of it
            broken = runner.writer.submit([("not", "a", "write")])  # type: ignore[list-item]
            with pytest.raises(StorageError, match=r"The writer thread of .* died \(ValueError: "):
                await asyncio.wait_for(broken, DEADLINE_S)
            with pytest.raises(LoopDiedError, match="its group-commit writer loop died") as info:
                await asyncio.wait_for(runner.wait(execution_id), DEADLINE_S)
            later = runner.writer.submit([])
            with pytest.raises(StorageError, match="died"):  # nothing more is queued to a dead thread
                await asyncio.wait_for(later, DEADLINE_S)
    finally:
        release.set()
    assert info.value.loop == "group-commit writer"


async def test_a_timed_out_plain_task_holds_its_place_until_its_thread_returns(database_url: str) -> None:
    release = threading.Event()
    order: list[str] = []

    @workflow(name="abandoned", package="supervision")
    class abandoned:
        @task(timeout_s=0.05)
        def stuck(ctx: Context) -> None:
            release.wait(DEADLINE_S)
            order.append("stuck returned")

        @task
        def next_one(ctx: Context) -> None:
            order.append("next_one started")

    try:
        async with make_runner(database_url, max_concurrent_tasks=1) as runner:
            execution_id = await runner.submit(abandoned)

            async def stuck_failed() -> bool:
                record = await runner.get_execution(execution_id)
                return record.tasks[0].status == "failed"

            deadline = time.monotonic() + DEADLINE_S
            while not await stuck_failed():
                assert time.monotonic() < deadline, "the stuck task never timed out"
                await asyncio.sleep(0.01)
            # its attempt is over, but its thread still runs: the one place is still taken
            assert runner._services is not None
            assert runner._services.semaphore.locked()
            assert order == []
            record = await runner.get_execution(execution_id)
            assert record.tasks[1].status == "pending"
            release.set()
            result = await asyncio.wait_for(runner.wait(execution_id), DEADLINE_S)
    finally:
        release.set()
    assert order == ["stuck returned", "next_one started"]
    assert result.tasks["stuck"].error is not None
    assert "ran longer than its timeout of 0.05s" in result.tasks["stuck"].error
    assert result.tasks["next_one"].status == "completed"


async def test_a_task_s_timeout_starts_when_it_starts_not_while_it_waits_for_a_place(database_url: str) -> None:
    timeout_s = 0.1

    @workflow(name="queued", package="supervision")
    class queued:
        @task
        def occupies(ctx: Context) -> None:
            time.sleep(timeout_s * 4)  # holds the only place for longer than the next task's timeout

        @task(timeout_s=timeout_s)
        def waits_then_runs(ctx: Context) -> None:
            ctx.set("ran", True)

        @task(timeout_s=timeout_s)
        async def waits_then_runs_async(ctx: Context) -> None:
            ctx.set("ran_async", True)

    async with make_runner(database_url, max_concurrent_tasks=1) as runner:
        result = await asyncio.wait_for(runner.execute(queued), DEADLINE_S)
    assert result.ok, result.error
    assert {tid: (o.status, o.attempts) for tid, o in result.tasks.items()} == {
        "occupies": ("completed", 1),
        "waits_then_runs": ("completed", 1),
        "waits_then_runs_async": ("completed", 1),
    }
    assert result.context.get("ran") is True
    assert result.context.get("ran_async") is True
