"""Schedules end to end: ``inspect`` shows them, ``schedules`` controls them, real ``serve`` processes fire them.

The serving hosts' scheduler clock runs ahead (``CLOACINA_SCHEDULER_CLOCK_OFFSET_S``, a hidden test
hook), so an every-minute schedule registered now is due at once: no test waits for a minute to pass.
"""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cloacina_host._storage import _queries as q
from cloacina_host._storage import open_database
from cloacina_host.cli import main

pytestmark = pytest.mark.slow

SERVING = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_serving", "serving.py"
)
ctl_json, stop_serve, until = SERVING.ctl_json, SERVING.stop_serve, SERVING.until


def start_serve(log: Path) -> subprocess.Popen[str]:
    """A real ``serve`` whose scheduler ticks every 0.2 s too."""
    return SERVING.start_serve(log, "--schedule-tick", "0.2")  # type: ignore[no-any-return]


def _started_by(database_url: str) -> list[str | None]:
    db = open_database(database_url)
    try:
        with db.read("reading") as conn:
            return [r.started_by for r in q.list_executions(conn, tenant="public", limit=1000)]
    finally:
        db.dispose()


def test_inspect_shows_the_schedules(reg_archives: dict[str, Path], capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    assert main(["inspect", str(reg_archives["sched-1"])]) == 0
    text = capfd.readouterr().out
    assert "every_minute: '* * * * *' in UTC (Every minute), catchup skip" in text
    assert "nightly: '0 3 * * *' in Europe/Berlin" in text
    assert main(["inspect", str(reg_archives["sched-1"]), "--graph", "mermaid"]) == 0
    assert "(schedules every_minute: * * * * * UTC; nightly: 0 3 * * * Europe/Berlin)" in capfd.readouterr().out
    printed = ctl_json(capfd, "inspect", str(reg_archives["sched-1"]))
    assert printed["format_version"] == 2
    assert [s["name"] for s in printed["workflows"][0]["schedules"]] == ["every_minute", "nightly"]


def test_two_serving_hosts_fire_a_due_time_once_and_restarts_never_fire_it_again(
    database_url: str,
    tmp_path: Path,
    reg_archives: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", database_url)
    assert main(["register", str(reg_archives["sched-1"])]) == 0
    listed = ctl_json(capfd, "schedules", "list")["schedules"]
    assert [(s["workflow"], s["name"], s["paused"], s["last_fire"]) for s in listed] == [
        ("sched_flow::sched_flow", "every_minute", False, None),
        ("sched_flow::sched_flow", "nightly", False, None),
    ]
    assert listed[1]["next_fire"]["local"].endswith(("T03:00:00+01:00", "T03:00:00+02:00"))
    assert listed[1]["next_fire"]["utc"].endswith(("T02:00:00Z", "T01:00:00Z"))
    assert ctl_json(capfd, "schedules", "pause", "sched_flow", "nightly") == {
        "paused": [{"workflow": "sched_flow::sched_flow", "name": "nightly"}]
    }
    unknown = ctl_json(capfd, "schedules", "pause", "no_such_flow", status=3)
    assert "No live schedule belongs to workflow 'no_such_flow'" in unknown["error"]

    # the hosts' clock is 150 s ahead: at least two every-minute fire times are due the moment they start
    monkeypatch.setenv("CLOACINA_SCHEDULER_CLOCK_OFFSET_S", "150")
    procs = [start_serve(tmp_path / "serve-a.log"), start_serve(tmp_path / "serve-b.log")]
    try:

        def fired() -> Any:
            listed = ctl_json(capfd, "schedules", "list")["schedules"]  # installed plugins' too, now
            return next(s["last_fire"] for s in listed if s["name"] == "every_minute")

        last = until("a host to fire every_minute", fired, procs)
        shown = until(
            "the fired execution to finish",
            lambda: (
                (s := ctl_json(capfd, "executions", "show", last["execution_id"]))["status"]
                not in ("queued", "running")
                and s
            ),
            procs,
        )
        assert (shown["status"], shown["final_context"]["ran_from"]) == ("completed", "every_minute")
    finally:
        for proc in procs:
            stop_serve(proc)
    for round_ in range(2):  # restarted twice in a row: the fire times they claimed never fire again
        proc = start_serve(tmp_path / f"serve-restart-{round_}.log")
        try:
            until("the restarted host to serve", lambda r=round_: _serving(tmp_path, r), [proc])
            until("its scheduler's first pass", lambda r=round_: _scheduled(tmp_path, r), [proc])
        finally:
            stop_serve(proc)
    started = _started_by(database_url)
    assert started, "no execution was started"
    assert all(s is not None and s.startswith("schedule every_minute at ") for s in started), started
    assert len(started) == len(set(started)), f"a fire time started more than one execution: {started}"


def _serving(tmp_path: Path, round_: int) -> bool:
    return "serving tenant" in (tmp_path / f"serve-restart-{round_}.log").read_text(encoding="utf-8")


def _scheduled(tmp_path: Path, round_: int) -> bool:
    return "live schedule(s)" in (tmp_path / f"serve-restart-{round_}.log").read_text(encoding="utf-8")


BAD_PROJECT = {
    "pyproject.toml": """\
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "bad-cron"
version = "1.0.0"
dependencies = ["cloacina-workflow"]

[project.entry-points."cloacina.workflows"]
bad = "bad_cron:bad"

[tool.hatch.build.targets.wheel]
packages = ["src/bad_cron"]
""",
    "src/bad_cron/__init__.py": """\
from cloacina_workflow import Context, Schedule, task, workflow


@workflow(name="bad", schedules=[Schedule("0 0 30 2 *")])
class bad:
    @task
    def only(ctx: Context) -> None:
        ctx.set("ran", True)
""",
}


def test_validate_refuses_an_impossible_schedule(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "bad-cron"
    for name, text in BAD_PROJECT.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text, encoding="utf-8")
    capfd.readouterr()
    assert main(["validate", str(project), "--no-isolation"]) == 1
    err = capfd.readouterr().err
    assert "cron expression '0 0 30 2 *' is not valid: Bad day-of-month" in err
    assert "Traceback" not in err
