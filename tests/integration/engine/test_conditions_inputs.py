"""The engine on SQLite and PostgreSQL: a condition's skip is stored with its reason; a bad typed input is
refused before anything is stored (the executions table is unchanged), however the execution is started."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from pydantic import BaseModel

from cloacina_host import DefaultRunner, Registry, WorkflowCatalog
from cloacina_host._engine._schedules import Scheduler
from cloacina_host._storage import _queries as q
from cloacina_host._storage import _schedules as qs
from cloacina_host._storage import open_database
from cloacina_workflow import Context, Ctx, InputError, Schedule, WorkflowDefinitionError, task, workflow


class ReportInput(BaseModel):
    day: datetime.date
    mode: str = "quick"


@workflow(name="typed_report", package="cond_tests", input=ReportInput)
class typed_report:
    @task
    def collect(ctx: Context) -> None:
        ctx.set("rows", 2)

    @task(dependencies=["collect"], when=[Ctx("mode").equals("full")])
    def full_report(ctx: Context) -> None:
        ctx.set("full", True)

    @task(dependencies=["full_report"])
    def archive(ctx: Context) -> None: ...

    @task(dependencies=["collect"], trigger_rule="any_failed")
    def alert(ctx: Context) -> None: ...


def _execution_count(url: str) -> int:
    db = open_database(url)
    try:
        with db.read("counting executions") as conn:
            return len(q.list_executions(conn, tenant="public", limit=1000))
    finally:
        db.dispose()


async def test_a_false_condition_is_stored_skipped_with_its_reason(database_url: str, tmp_path: Path) -> None:
    catalog = WorkflowCatalog()
    catalog.add_workflow(typed_report)
    async with DefaultRunner(database_url, catalog=catalog, home=tmp_path, recover=False) as runner:
        result = await runner.execute(typed_report, {"day": "2024-05-01"})
        stored = await runner.get_execution(result.execution_id)
    assert result.status == "completed"  # skips do not fail an execution
    errors = {t.task_id: (t.status, t.error) for t in stored.tasks}
    assert errors == {
        "collect": ("completed", None),
        "full_report": ("skipped", "skipped: condition not met: context 'mode' equals \"full\" (the key is absent)"),
        "archive": ("skipped", "skipped: upstream task 'full_report' was skipped"),
        "alert": ("skipped", "skipped: trigger rule any_failed: none of its dependencies ('collect') failed"),
    }


async def _refused(url: str, home: Path, how: str) -> InputError:
    catalog = WorkflowCatalog()
    catalog.add_workflow(typed_report)
    async with DefaultRunner(url, catalog=catalog, home=home, recover=False) as runner:
        if how == "execute":
            start = runner.execute("cond_tests::typed_report", {"day": "someday"})
        else:
            start = runner.submit(typed_report, {"day": "someday"}, detach=how == "detach", distributed=how == "dist")
        with pytest.raises(InputError) as info:
            await start
    assert _execution_count(url) == 0
    return info.value


@pytest.mark.parametrize("how", ["execute", "detach"])
async def test_a_bad_input_is_refused_before_anything_is_stored(database_url: str, tmp_path: Path, how: str) -> None:
    error = await _refused(database_url, tmp_path, how)
    assert str(error).startswith("input of typed_report: 'day': Input should be a valid date")
    assert '(got "someday")' in str(error)
    assert error.problems[0].startswith("'day': ")


@pytest.mark.postgres
async def test_a_bad_input_of_a_distributed_execution_is_refused_before_it_is_stored(
    postgres_schema_url: str, tmp_path: Path
) -> None:
    error = await _refused(postgres_schema_url, tmp_path, "dist")
    assert str(error).startswith("input of typed_report: 'day': Input should be a valid date")


def test_a_schedule_whose_context_breaks_the_input_is_refused_at_decoration() -> None:
    with pytest.raises(
        WorkflowDefinitionError, match="the context of schedule 'default' does not fit its input: 'day'"
    ):

        @workflow(name="bad_schedule", input=ReportInput, schedules=[Schedule("0 3 * * *", context={"day": "x"})])
        class bad_schedule:
            @task
            def t(ctx: Context) -> None: ...


def test_a_scheduled_fire_checks_the_input_before_storing(database_url: str) -> None:
    @workflow(
        name="scheduled_report",
        package="cond_tests",
        input=ReportInput,
        schedules=[Schedule("* * * * *", context={"day": "2024-05-01"})],
    )
    class scheduled_report:
        @task
        def t(ctx: Context) -> None: ...

    catalog = WorkflowCatalog()
    catalog.add_workflow(scheduled_report)
    db = open_database(database_url)
    try:
        spec = qs.ScheduleSpec(
            namespace="public::cond_tests::scheduled_report",
            name="default",
            cron="* * * * *",
            timezone="UTC",
            context={"day": "not a date"},  # a stored row that no longer fits (its package changed the model)
            catchup="skip",
            max_catchup=1,
        )
        with db.write("storing a schedule") as conn:
            qs.replace_schedules(conn, source="test", package_version=None, specs=[spec], now=0.0)
        fired = Scheduler(db, catalog, tenant="public", owner="test", now=lambda: 600.0).tick()
        assert fired == []
    finally:
        db.dispose()
    assert _execution_count(database_url) == 0


async def test_a_registered_packages_input_is_checked_by_its_model_in_its_worker(
    database_url: str, tmp_path: Path, reg_archives: dict[str, Path]
) -> None:
    home = tmp_path / "home"
    registry = Registry(database_url, home=home, load_timeout_s=20)
    try:
        registry.register(reg_archives["typed"])
        async with DefaultRunner(database_url, catalog=registry.catalog(), home=home, recover=False) as runner:
            with pytest.raises(InputError, match="'day': Value error, the day is too far in the future"):
                await runner.submit("typed_flow::nightly_report", {"day": "2999-01-01"})
            assert _execution_count(database_url) == 0
            result = await runner.execute("typed_flow::nightly_report", {"day": "2024-05-01", "mode": "full"})
    finally:
        registry.close()
    assert result.status == "completed"
    assert result.context.get("full") is True
