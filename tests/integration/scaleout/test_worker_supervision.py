"""Issue 11, item 5, for the distributed worker: supervised LISTEN and lease renewal; places held by threads.

A worker whose lease renewal keeps failing, or whose LISTEN loop dies, claims nothing more, hands
its tasks back and raises ``LoopDiedError`` from ``run()`` (the CLI exits 2 with its message). A
plain task abandoned at its timeout keeps its place under ``concurrency`` until its thread returns.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import create_engine

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_host._engine._distributed import DistributedWorker
from cloacina_host._engine._supervise import LoopDiedError
from cloacina_host._storage import _channel
from cloacina_workflow import Context, Workflow, task, workflow

pytestmark = pytest.mark.postgres

DEADLINE_S = 30.0
STARTED = threading.Event()
RELEASE = threading.Event()
ORDER: list[str] = []


@workflow(name="held", package="supervision")
class held:
    @task
    def blocks(ctx: Context) -> None:
        STARTED.set()
        RELEASE.wait(DEADLINE_S)


@workflow(name="abandoned", package="supervision")
class abandoned:
    @task(timeout_s=0.05)
    def stuck(ctx: Context) -> None:
        STARTED.set()
        RELEASE.wait(DEADLINE_S)
        ORDER.append("stuck returned")


@workflow(name="next_one", package="supervision")
class next_one:
    @task
    def runs(ctx: Context) -> None:
        ORDER.append("next_one started")


def _catalog(*workflows: Workflow) -> WorkflowCatalog:
    catalog = WorkflowCatalog()
    for wf in workflows:
        catalog.add_workflow(wf)
    return catalog


@pytest.fixture
async def submitter(postgres_schema_url: str) -> AsyncIterator[DefaultRunner]:
    STARTED.clear()
    RELEASE.clear()
    ORDER.clear()
    try:
        async with DefaultRunner(
            postgres_schema_url, catalog=_catalog(held, abandoned, next_one), recover=False
        ) as runner:
            yield runner
    finally:
        RELEASE.set()


def _rename_table(url: str, table: str, to: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {to}")
    finally:
        engine.dispose()


async def test_a_worker_whose_lease_renewal_keeps_failing_stops_and_says_why(
    postgres_schema_url: str, submitter: DefaultRunner
) -> None:
    await submitter.submit(held, distributed=True)
    worker = DistributedWorker(
        postgres_schema_url, catalog=_catalog(held), concurrency=1, lease_s=0.6, poll_s=0.2, grace_s=0
    )
    running = asyncio.ensure_future(worker.run())
    try:
        await asyncio.to_thread(STARTED.wait, DEADLINE_S)
        _rename_table(postgres_schema_url, "task_executions", "task_executions_gone")  # renewals fail now
        with pytest.raises(LoopDiedError) as info:
            await asyncio.wait_for(running, DEADLINE_S)
    finally:
        RELEASE.set()
        worker.stop(now=True)
        await asyncio.gather(running, return_exceptions=True)
    assert info.value.loop == "lease renewal"
    assert info.value.exit_status == 2
    message = str(info.value)
    assert message.startswith(f"Worker {worker.owner} stopped: its lease renewal loop died (the leases could not")
    assert "longer than a lease (0.6 s)" in message
    assert "task_executions" in message
    assert worker.failure is info.value
    assert worker.running == []  # it handed back (or gave up) what it ran


async def test_a_worker_whose_listen_loop_dies_stops_and_says_why(
    postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(_db: Any, _on_listening: Any) -> AsyncIterator[str]:
        raise RuntimeError("a bug in the listener")
        yield ""  # pragma: no cover  # makes this an async generator, as the real one

    # an error LISTEN never expects (not the StorageError it reconnects after): a bug's shape
    monkeypatch.setattr(_channel, "notifications", broken)
    worker = DistributedWorker(postgres_schema_url, catalog=_catalog(held), concurrency=1, poll_s=0.2)
    with pytest.raises(LoopDiedError, match=r"its LISTEN loop died \(RuntimeError: a bug in the listener\)") as info:
        await asyncio.wait_for(worker.run(), DEADLINE_S)
    assert info.value.loop == "LISTEN"
    assert "It claimed nothing more" in str(info.value)


async def test_a_timed_out_plain_task_keeps_its_place_in_the_worker_until_its_thread_returns(
    postgres_schema_url: str, submitter: DefaultRunner
) -> None:
    execution_id = await submitter.submit(abandoned, distributed=True)
    worker = DistributedWorker(postgres_schema_url, catalog=_catalog(abandoned, next_one), concurrency=1, poll_s=0.2)
    running = asyncio.ensure_future(worker.run())
    try:
        result = await asyncio.wait_for(submitter.wait(execution_id, poll_s=0.02), DEADLINE_S)  # stuck timed out
        assert STARTED.is_set()
        later = await submitter.submit(next_one, distributed=True)
        # the stuck attempt ended, its thread runs on: the worker's one place is still taken
        assert worker.busy == 1
        assert ORDER == []
        assert (await submitter.get_execution(later)).tasks[0].status == "ready"
        RELEASE.set()
        later_result = await asyncio.wait_for(submitter.wait(later, poll_s=0.02), DEADLINE_S)
    finally:
        RELEASE.set()
        worker.stop(now=True)
        await asyncio.gather(running, return_exceptions=True)
    assert ORDER == ["stuck returned", "next_one started"]
    assert result.tasks["stuck"].status == "failed"
    assert "ran longer than its timeout of 0.05s" in (result.tasks["stuck"].error or "")
    assert later_result.ok


@pytest.mark.slow
async def test_cloacina_ctl_worker_exits_2_naming_the_dead_loop(
    postgres_schema_url: str,
    scale_flows: ModuleType,
    start_worker: Callable[..., Any],
    tmp_path: Path,
    read_runs: Callable[[Path], tuple[Any, Any]],
) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    catalog = _catalog(scale_flows.slow)
    async with DefaultRunner(postgres_schema_url, catalog=catalog, recover=False) as runner:
        worker = start_worker(postgres_schema_url, "doomed", "--lease-seconds", "0.6", "--poll-seconds", "0.2")
        worker.wait_for("serving tenant")
        context = {"key": "s", "out_dir": str(out), "nap_s": DEADLINE_S}
        await runner.submit(scale_flows.slow, context, distributed=True)
        deadline = time.monotonic() + DEADLINE_S
        while not read_runs(out)[0]:  # its task runs, under a lease it renews
            assert time.monotonic() < deadline, worker.output()
            await asyncio.sleep(0.02)
        _rename_table(postgres_schema_url, "task_executions", "task_executions_gone")
        status = await asyncio.to_thread(worker.process.wait, DEADLINE_S)
    output = worker.output()
    assert status == 2, output
    assert "error: Worker " in output
    assert "stopped: its lease renewal loop died (the leases could not be renewed for" in output
    assert "Traceback" not in output
