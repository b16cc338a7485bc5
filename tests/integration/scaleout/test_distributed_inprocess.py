"""Distributed executions with workers in this process: claims, exactly-once readiness, retries, failures."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cloacina_host import DefaultRunner, UsageError, WorkflowCatalog
from cloacina_host._engine._distributed import DistributedWorker
from cloacina_workflow import Context, TaskError, Workflow, task, workflow

pytestmark = pytest.mark.postgres

RUNS: Counter[tuple[str, str]] = Counter()


def _ran(ctx: Context, name: str) -> None:
    RUNS[(str(ctx.get("key")), name)] += 1


@workflow(name="simple", package="scale")
class simple:
    @task
    async def only(ctx: Context) -> None:
        _ran(ctx, "only")
        ctx.set("only", True)


@workflow(name="pipeline", package="scale")
class pipeline:
    @task
    def extract(ctx: Context) -> None:
        _ran(ctx, "extract")
        ctx.set("numbers", [1, 2, 3])

    @task(dependencies=["extract"])
    async def transform(ctx: Context) -> None:
        _ran(ctx, "transform")
        ctx.set("squares", [n * n for n in ctx.get("numbers")])

    @task(dependencies=["transform"])
    def load(ctx: Context) -> None:
        _ran(ctx, "load")
        ctx.set("total", sum(ctx.get("squares")))


@workflow(name="parallel", package="scale")
class parallel:
    @task
    async def setup(ctx: Context) -> None:
        _ran(ctx, "setup")
        ctx.set("items", list(range(30)))

    @task(dependencies=["setup"])
    async def batch_1(ctx: Context) -> None:
        _ran(ctx, "batch_1")
        ctx.set("sum_1", sum(ctx.get("items")[0:10]))

    @task(dependencies=["setup"])
    def batch_2(ctx: Context) -> None:
        _ran(ctx, "batch_2")
        ctx.set("sum_2", sum(ctx.get("items")[10:20]))

    @task(dependencies=["setup"])
    async def batch_3(ctx: Context) -> None:
        _ran(ctx, "batch_3")
        ctx.set("sum_3", sum(ctx.get("items")[20:30]))

    @task(dependencies=["batch_1", "batch_2", "batch_3"])
    async def merge(ctx: Context) -> None:
        _ran(ctx, "merge")
        ctx.set("total", ctx.get("sum_1") + ctx.get("sum_2") + ctx.get("sum_3"))


@workflow(name="flaky", package="scale")
class flaky:
    @task(retry_attempts=2, retry_delay_ms=10, retry_jitter=False)
    def wobbly(ctx: Context) -> None:
        _ran(ctx, "wobbly")
        if RUNS[(str(ctx.get("key")), "wobbly")] < 2:
            raise TaskError.ExecutionFailed("first try fails")
        ctx.set("wobbly", "ok")

    @task
    def independent(ctx: Context) -> None:
        _ran(ctx, "independent")

    @task(dependencies=["wobbly"])
    def broken(ctx: Context) -> None:
        _ran(ctx, "broken")
        raise ValueError("always broken")

    @task(dependencies=["broken"])
    def after(ctx: Context) -> None:
        _ran(ctx, "after")


SHAPES: tuple[Workflow, ...] = (simple, pipeline, parallel)


def _catalog(*workflows: Workflow) -> WorkflowCatalog:
    catalog = WorkflowCatalog()
    for wf in workflows:
        catalog.add_workflow(wf)
    return catalog


@asynccontextmanager
async def _workers(
    url: str, count: int, catalog: Callable[[], WorkflowCatalog], **kw: object
) -> AsyncIterator[list[DistributedWorker]]:
    workers = [
        DistributedWorker(url, catalog=catalog(), concurrency=4, poll_s=1.0, **kw)  # type: ignore[arg-type]
        for _ in range(count)
    ]
    tasks = [asyncio.ensure_future(w.run()) for w in workers]
    try:
        yield workers
    finally:
        for w in workers:
            w.stop(now=True)
        await asyncio.gather(*tasks)


async def test_three_workers_run_every_task_exactly_once(postgres_schema_url: str) -> None:
    RUNS.clear()
    async with DefaultRunner(postgres_schema_url, catalog=_catalog(*SHAPES), recover=False) as submitter:
        ids = {}
        for i in range(60):
            wf = SHAPES[i % 3]
            ids[await submitter.submit(wf, {"key": f"w{i}"}, distributed=True)] = (f"w{i}", wf)
        async with _workers(postgres_schema_url, 3, lambda: _catalog(*SHAPES)) as workers:
            results = await asyncio.wait_for(
                asyncio.gather(*(submitter.wait(eid, poll_s=0.05) for eid in ids)), timeout=60
            )
        records = [await submitter.get_execution(eid) for eid in ids]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    expected = Counter({(key, tid): 1 for key, wf in ids.values() for tid in wf.tasks})
    assert expected == RUNS
    for result in results:
        if result.workflow.endswith("parallel") or result.workflow.endswith("pipeline"):
            assert result.context.get("total") in (14, 435)
    for record in records:
        assert [len(t.attempts) for t in record.tasks] == [1] * len(record.tasks)
        assert all(a.status == "completed" for t in record.tasks for a in t.attempts)
    assert sum(w.stats.completed for w in workers) == sum(len(wf.tasks) for _, wf in ids.values())
    assert all(w.stats.lost == 0 and w.stats.reclaimed == 0 for w in workers)


async def test_retries_failures_skips_and_a_workflow_the_worker_cannot_load(postgres_schema_url: str) -> None:
    RUNS.clear()

    @workflow(name="ghost", package="elsewhere")
    class ghost:
        @task
        def boo(ctx: Context) -> None:
            _ran(ctx, "boo")

        @task(dependencies=["boo"])
        def later(ctx: Context) -> None:
            _ran(ctx, "later")

    async with DefaultRunner(postgres_schema_url, catalog=_catalog(flaky, ghost, simple), recover=False) as submitter:
        flaky_id = await submitter.submit(flaky, {"key": "f"}, distributed=True)
        ghost_id = await submitter.submit(ghost, {"key": "g"}, distributed=True)
        simple_id = await submitter.submit(simple, {"key": "s"}, distributed=True)
        async with _workers(postgres_schema_url, 2, lambda: _catalog(flaky, simple)):
            flaky_result, ghost_result, simple_result = await asyncio.wait_for(
                asyncio.gather(*(submitter.wait(e, poll_s=0.05) for e in (flaky_id, ghost_id, simple_id))), 60
            )
        ghost_record = await submitter.get_execution(ghost_id)

    assert flaky_result.status == "failed"
    assert {t: o.status for t, o in flaky_result.tasks.items()} == {
        "wobbly": "completed",
        "independent": "completed",
        "broken": "failed",
        "after": "skipped",
    }
    assert flaky_result.tasks["wobbly"].attempts == 2
    assert flaky_result.tasks["broken"].attempts == 1  # retry_attempts=0: fails for good at once
    assert "ValueError: always broken" in (flaky_result.error or "")
    assert flaky_result.context.get("wobbly") == "ok"
    assert RUNS[("f", "after")] == 0

    assert ghost_result.status == "failed"
    assert ghost_result.tasks["boo"].status == "failed"
    assert ghost_result.tasks["later"].status == "skipped"
    assert "cannot load workflow 'public::elsewhere::ghost'" in (ghost_result.error or "")
    assert "No workflow named" in (ghost_result.error or "")
    assert ghost_record.tasks[0].attempts[0].traceback
    assert RUNS[("g", "boo")] == 0

    assert simple_result.ok  # the worker went on serving


async def test_a_worker_and_a_submitter_refuse_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with pytest.raises(UsageError, match="needs PostgreSQL"):
        await DistributedWorker(url, catalog=WorkflowCatalog()).run()
    async with DefaultRunner(url, catalog=_catalog(simple), recover=False) as runner:
        with pytest.raises(UsageError, match="need PostgreSQL"):
            await runner.submit(simple, distributed=True)
