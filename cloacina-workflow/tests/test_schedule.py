"""``Schedule`` and ``@workflow(schedules=...)``: checked at decoration, recorded by ``describe()``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cloacina_workflow import Context, Schedule, WorkflowDefinitionError, task, workflow


def _flow(*schedules: Schedule) -> object:
    @workflow(name="timed", package="pkg", schedules=list(schedules))
    class timed:
        @task(id="only")
        def only(ctx: Context) -> None:
            ctx.set("done", True)

    return timed


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"cron": "*/5 * * *"}, "cron expression '*/5 * * *' is not valid: Wrong number of fields; use five fields"),
        ({"cron": "61 * * * *"}, "cron expression '61 * * * *' is not valid: Bad minute"),
        ({"cron": "0 0 30 2 *"}, "'0 0 30 2 *' is not valid: Bad day-of-month (a day outside 1-31, or one the months"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "time zone 'Mars/Olympus' is not known to zoneinfo; use"),
        ({"cron": "* * * * *", "catchup": "some"}, "catchup: Input should be 'skip' or 'all'"),
        ({"cron": "* * * * *", "max_catchup": 0}, "max_catchup: Input should be greater than or equal to 1"),
        ({"cron": "* * * * *", "context": {"when": object()}}, "is not a JSON value"),
    ],
)
def test_a_bad_schedule_is_refused_with_the_expression_and_the_fix(kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        Schedule(**kwargs)  # type: ignore[arg-type]
    assert expected in str(info.value)
    assert str(info.value).startswith(f"Schedule {kwargs['cron']!r}: ")


def test_the_only_unnamed_schedule_is_named_default() -> None:
    flow = _flow(Schedule("*/5 * * * *", timezone="Europe/Berlin", context={"source": "cron"}))
    assert [s.name for s in flow.schedules] == ["default"]  # type: ignore[attr-defined]
    assert flow.describe()["schedules"] == [  # type: ignore[attr-defined]
        {
            "cron": "*/5 * * * *",
            "timezone": "Europe/Berlin",
            "context": {"source": "cron"},
            "catchup": "skip",
            "max_catchup": 100,
            "name": "default",
        }
    ]


def test_several_schedules_need_unique_names() -> None:
    with pytest.raises(
        WorkflowDefinitionError, match="has 2 schedules and the one with cron '0 3 \\* \\* \\*' has no name"
    ):
        _flow(Schedule("* * * * *", name="often"), Schedule("0 3 * * *"))
    with pytest.raises(WorkflowDefinitionError, match="two schedules named 'often'"):
        _flow(Schedule("* * * * *", name="often"), Schedule("0 3 * * *", name="often"))
    with pytest.raises(WorkflowDefinitionError, match=r"give Schedule\(\.\.\.\) objects"):
        _flow("* * * * *")  # type: ignore[arg-type]


def test_schedules_leave_the_fingerprint_and_an_unscheduled_description_as_they_were() -> None:
    plain, scheduled = _flow(), _flow(Schedule("0 3 * * *"))
    assert "schedules" not in plain.describe()  # type: ignore[attr-defined]
    assert plain.fingerprint() == scheduled.fingerprint()  # type: ignore[attr-defined]


def test_importing_the_kit_does_not_import_the_cron_library() -> None:
    code = "import sys, cloacina_workflow; print('cronsim' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
