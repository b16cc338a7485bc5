"""The durable engine end to end on real databases: SQLite files and the PostgreSQL server."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

from cloacina_host import DefaultRunner, NotFoundError, WorkflowCatalog, WorkflowNotFoundError
from cloacina_workflow import Context, ContextError, TaskError, task, workflow


def make_runner(database_url: str, **kwargs: object) -> DefaultRunner:
    return DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False, **kwargs)  # type: ignore[arg-type]


@workflow(name="pipeline", package="bench")
class pipeline:
    @task
    async def extract(ctx: Context) -> None:
        ctx.insert("numbers", list(range(10)))

    @task(dependencies=["extract"])
    def transform(ctx: Context) -> None:
        ctx.insert("doubled", [n * 2 for n in ctx.get("numbers")])

    @task(dependencies=["transform"])
    async def load(ctx: Context) -> None:
        ctx.insert("total", sum(ctx.get("doubled")))


async def test_execute_runs_the_dag_and_stores_every_task(database_url: str) -> None:
    async with make_runner(database_url) as runner:
        runner.add_workflow(pipeline)
        result = await runner.execute("pipeline", {"source": "test"})
        record = await runner.get_execution(result.execution_id)

    assert result.ok
    assert result.workflow == "public::bench::pipeline"
    assert result.context.to_dict() == {
        "source": "test",
        "numbers": list(range(10)),
        "doubled": [n * 2 for n in range(10)],
        "total": 90,
    }
    assert {tid: (o.status, o.attempts, o.error) for tid, o in result.tasks.items()} == {
        "extract": ("completed", 1, None),
        "transform": ("completed", 1, None),
        "load": ("completed", 1, None),
    }
    assert record.status == "completed"
    assert record.tenant == "public"
    assert record.namespace == "public::bench::pipeline"
    assert record.context_in == {"source": "test"}
    assert record.context_out == result.context.to_dict()
    assert [t.task_id for t in record.tasks] == ["extract", "transform", "load"]
    for t in record.tasks:
        assert t.status == "completed"
        assert [(a.attempt, a.status) for a in t.attempts] == [(1, "completed")]
        assert t.attempts[0].finished_at is not None
        assert t.attempts[0].finished_at >= t.attempts[0].started_at
    assert record.tasks[2].context_out == result.context.to_dict()


async def test_a_diamond_runs_its_join_once_after_both_branches(database_url: str) -> None:
    runs: list[str] = []

    @workflow(name="diamond")
    class diamond:
        @task
        def top(ctx: Context) -> None:
            runs.append("top")

        @task(dependencies=["top"])
        async def left(ctx: Context) -> None:
            await asyncio.sleep(0.01)
            runs.append("left")
            ctx.set("left", True)

        @task(dependencies=["top"])
        async def right(ctx: Context) -> None:
            runs.append("right")
            ctx.set("right", True)

        @task(dependencies=["left", "right"])
        def join(ctx: Context) -> None:
            assert ctx.get("left")
            assert ctx.get("right")
            runs.append("join")

    async with make_runner(database_url) as runner:
        results = await asyncio.gather(*(runner.execute(diamond) for _ in range(5)))
    assert all(r.ok for r in results)
    assert runs.count("join") == 5
    assert runs.count("top") == 5


async def test_input_context_merges_dependencies_later_declared_wins_and_logs(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: dict[str, object] = {}

    @workflow(name="merge")
    class merge:
        @task
        def first(ctx: Context) -> None:
            ctx.set("shared", "from first")
            ctx.set("only_first", 1)

        @task
        def second(ctx: Context) -> None:
            ctx.set("shared", "from second")

        @task(dependencies=["second", "first"])
        def combine(ctx: Context) -> None:
            seen.update(ctx.to_dict())

    with caplog.at_level(logging.WARNING, logger="cloacina_host.engine"):
        async with make_runner(database_url) as runner:
            result = await runner.execute(merge, {"initial": True, "shared": "initial"})
    assert result.ok
    assert seen == {"initial": True, "shared": "from first", "only_first": 1}
    conflicts = [r.getMessage() for r in caplog.records if "different values" in r.getMessage()]
    assert len(conflicts) == 1
    assert "'shared'" in conflicts[0]
    assert "'first' (declared later) wins" in conflicts[0]


async def test_retries_store_each_attempt_with_error_and_traceback(database_url: str) -> None:
    calls = {"n": 0}

    @workflow(name="flaky")
    class flaky:
        @task(retry_attempts=3, retry_delay_ms=0, retry_backoff="fixed", retry_jitter=False)
        def wobbly(ctx: Context) -> None:
            calls["n"] += 1
            if calls["n"] < 3:
                raise ConnectionError(f"network blip {calls['n']}")
            ctx.set("ok", calls["n"])

    async with make_runner(database_url) as runner:
        result = await runner.execute(flaky)
        record = await runner.get_execution(result.execution_id)
    assert result.ok
    assert result.context.get("ok") == 3
    outcome = result.tasks["wobbly"]
    assert (outcome.status, outcome.attempts, outcome.error) == ("completed", 3, None)
    assert len(outcome.errors) == 2
    attempts = record.tasks[0].attempts
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert attempts[0].error == "ConnectionError: network blip 1"
    assert attempts[1].traceback is not None
    assert "network blip 2" in attempts[1].traceback
    assert "Traceback (most recent call last)" in attempts[1].traceback


@pytest.mark.parametrize(
    ("condition", "error", "expected_attempts"),
    [
        ("never", TaskError.ExecutionFailed("boom"), 1),
        ("transient", TaskError.ValidationFailed("bad input"), 1),
        ("transient", TaskError.ExecutionFailed("boom"), 3),
        ("all", ValueError("boom"), 3),
    ],
)
async def test_retry_condition_decides_which_errors_run_again(
    database_url: str, condition: str, error: Exception, expected_attempts: int
) -> None:
    @workflow(name="failing")
    class failing:
        @task(retry_attempts=2, retry_delay_ms=0, retry_condition=condition)  # type: ignore[arg-type]
        def fail(ctx: Context) -> None:
            raise error

    async with make_runner(database_url) as runner:
        result = await runner.execute(failing)
    assert result.status == "failed"
    assert result.tasks["fail"].attempts == expected_attempts


async def test_retry_events_wait_out_the_backoff(database_url: str) -> None:
    delays: list[float] = []

    class Observer:
        from cloacina_workflow import hookimpl

        @hookimpl
        def cloacina_task_retrying(self, attempt: int, delay_s: float) -> None:
            delays.append(delay_s)

    @workflow(name="backoff")
    class backoff:
        @task(retry_attempts=3, retry_delay_ms=10, retry_backoff="exponential", retry_jitter=False)
        def fail(ctx: Context) -> None:
            raise RuntimeError("always")

    async with make_runner(database_url) as runner:
        runner.plugin_manager.register(Observer())
        result = await runner.execute(backoff)
    assert result.tasks["fail"].attempts == 4
    assert delays == [0.01, 0.02, 0.04]


async def test_a_task_failing_for_good_skips_its_dependents_and_fails_the_execution(database_url: str) -> None:
    @workflow(name="broken")
    class broken:
        @task
        def start(ctx: Context) -> None:
            ctx.set("started", True)

        @task(dependencies=["start"])
        def explode(ctx: Context) -> None:
            raise TaskError.ValidationFailed("Missing raw_data")

        @task(dependencies=["explode"])
        def after(ctx: Context) -> None:
            raise AssertionError("must not run")

        @task(dependencies=["after"])
        def much_later(ctx: Context) -> None:
            raise AssertionError("must not run")

        @task(dependencies=["start"])
        def independent(ctx: Context) -> None:
            ctx.set("independent", True)

    async with make_runner(database_url) as runner:
        result = await runner.execute(broken)
        record = await runner.get_execution(result.execution_id)
    assert result.status == "failed"
    statuses = {tid: o.status for tid, o in result.tasks.items()}
    assert statuses == {
        "start": "completed",
        "explode": "failed",
        "after": "skipped",
        "much_later": "skipped",
        "independent": "completed",
    }
    assert result.tasks["explode"].error == "TaskError.ValidationFailed: Missing raw_data"
    assert result.error is not None
    assert "'explode'" in result.error
    assert result.context.get("independent") is True
    assert record.status == "failed"
    assert record.error == result.error
    stored = {t.task_id: (t.status, len(t.attempts)) for t in record.tasks}
    assert stored["after"] == ("skipped", 0)
    assert stored["much_later"] == ("skipped", 0)
    assert stored["explode"] == ("failed", 1)


async def test_a_value_that_is_not_json_fails_the_task_naming_the_key(database_url: str) -> None:
    @workflow(name="not_json")
    class not_json:
        @task
        def bad(ctx: Context) -> None:
            ctx.insert("when", object())

    async with make_runner(database_url) as runner:
        result = await runner.execute(not_json)
        record = await runner.get_execution(result.execution_id)
    error = result.tasks["bad"].error
    assert result.status == "failed"
    assert error is not None
    assert error.startswith("ContextError.NotSerializable: ")
    assert "'when'" in error
    assert record.tasks[0].attempts[0].error == error


async def test_an_initial_context_that_is_not_json_is_refused_before_anything_is_stored(database_url: str) -> None:
    async with make_runner(database_url) as runner:
        with pytest.raises(ContextError.NotSerializable, match="'bad_key'"):
            await runner.execute(pipeline, {"bad_key": {1, 2}})


async def test_timeouts_per_task_and_runner_default(database_url: str) -> None:
    release = threading.Event()

    @workflow(name="slow")
    class slow:
        @task(timeout_s=0.05)
        async def slow_async(ctx: Context) -> None:
            await asyncio.sleep(30)

        @task
        def slow_sync(ctx: Context) -> None:  # the runner's default timeout applies
            release.wait(30)

        @task(timeout_s=5)
        async def quick(ctx: Context) -> None:
            ctx.set("quick", True)

    try:
        async with make_runner(database_url, default_timeout_s=0.05) as runner:
            result = await runner.execute(slow)
    finally:
        release.set()
    assert result.tasks["slow_async"].status == "failed"
    assert result.tasks["slow_async"].error == (
        "TaskError.Timeout: task 'slow_async' ran longer than its timeout of 0.05s and was abandoned; "
        "raise timeout_s (or the runner's default_timeout_s) if it needs more time"
    )
    assert result.tasks["slow_sync"].status == "failed"
    assert "timeout of 0.05s" in (result.tasks["slow_sync"].error or "")
    assert result.tasks["quick"].status == "completed"


async def test_a_task_raising_timeouterror_itself_is_not_reported_as_a_timeout(database_url: str) -> None:
    @workflow(name="own_timeout")
    class own_timeout:
        @task(timeout_s=10)
        async def raises(ctx: Context) -> None:
            raise TimeoutError("the remote API timed out")

    async with make_runner(database_url) as runner:
        result = await runner.execute(own_timeout)
    assert result.tasks["raises"].error == "TimeoutError: the remote API timed out"


async def test_plain_tasks_run_off_the_event_loop_and_max_concurrent_tasks_holds(database_url: str) -> None:
    lock = threading.Lock()
    state = {"running": 0, "peak": 0}
    threads: set[str] = set()

    @workflow(name="wide")
    class wide:
        @task
        def root(ctx: Context) -> None:
            pass

        def _leaf(ctx: Context) -> None:
            with lock:
                state["running"] += 1
                state["peak"] = max(state["peak"], state["running"])
                threads.add(threading.current_thread().name)
            time.sleep(0.02)
            with lock:
                state["running"] -= 1

        a = task(id="a", dependencies=["root"])(_leaf)
        b = task(id="b", dependencies=["root"])(_leaf)
        c = task(id="c", dependencies=["root"])(_leaf)
        d = task(id="d", dependencies=["root"])(_leaf)
        e = task(id="e", dependencies=["root"])(_leaf)

    loop_thread = threading.current_thread().name
    async with make_runner(database_url, max_concurrent_tasks=2) as runner:
        results = await asyncio.gather(*(runner.execute(wide) for _ in range(3)))
    assert all(r.ok for r in results)
    assert state["peak"] == 2
    assert loop_thread not in threads
    assert all(name.startswith("cloacina-task") for name in threads)


async def test_submit_returns_the_id_at_once_and_wait_gives_the_result(database_url: str) -> None:
    gate = asyncio.Event()

    @workflow(name="gated")
    class gated:
        @task
        async def wait_for_gate(ctx: Context) -> None:
            await gate.wait()
            ctx.set("passed", True)

    async with make_runner(database_url) as runner:
        execution_id = await runner.submit(gated)
        record = await runner.get_execution(execution_id)
        assert record.status == "running"
        gate.set()
        result = await runner.wait(execution_id)
        assert result.ok
        assert result.execution_id == execution_id
        # a finished execution is read back from storage
        again = await runner.wait(execution_id)
        assert again.context.to_dict() == {"passed": True}
        assert again.tasks["wait_for_gate"].attempts == 1
        with pytest.raises(NotFoundError, match="No execution 'nope'"):
            await runner.wait("nope")
        with pytest.raises(WorkflowNotFoundError, match="Known workflows: embedded::gated"):
            await runner.execute("missing")


def test_the_sync_form_works_without_an_event_loop(database_url: str) -> None:
    with make_runner(database_url) as runner:
        runner.add_workflow(pipeline)
        first = runner.execute_sync("bench::pipeline", {"n": 1})
        execution_id = runner.submit_sync("pipeline")
        second = runner.wait_sync(execution_id)
    assert first.ok
    assert first.context.get("total") == 90
    assert second.ok


def test_the_default_database_is_a_sqlite_file_under_the_cloacina_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLOACINA_DATABASE_URL", raising=False)
    with DefaultRunner(catalog=WorkflowCatalog()) as runner:
        result = runner.execute_sync(pipeline)
        assert runner.database.display_url == f"sqlite:///{tmp_path / 'home' / 'cloacina.db'}"
    assert result.ok
    assert (tmp_path / "home" / "cloacina.db").is_file()


async def test_installed_plugins_run_through_the_same_engine(
    database_url: str, plugin_site: Path, fresh_imports: None
) -> None:
    from cloacina_host import discover

    catalog = discover(path=[str(plugin_site)])  # the real plugin wheels, installed into a target
    entry = catalog.resolve("simple_demo::data_processing")
    assert entry.source.kind == "installed"
    async with DefaultRunner(database_url, catalog=catalog, recover=False) as runner:
        result = await runner.execute("data_processing")
    assert result.ok
    assert result.workflow == "public::simple_demo::data_processing"
    assert list(result.tasks) == ["collect_data", "process_data", "generate_report"]
    assert result.context.get("final_report")["summary"]["total_processed"] == 950
