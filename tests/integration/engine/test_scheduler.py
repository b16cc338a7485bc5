"""The scheduler on real databases, its clock driven by the test: each fire time starts one execution.

Schedules are written straight into the tenant's table here (the registry's part is tested in
``registry/test_schedules.py``); the workflow is embedded, so no package is built.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cloacina_host import DefaultRunner
from cloacina_host._discovery import WorkflowCatalog
from cloacina_host._engine._schedules import Scheduler, set_paused
from cloacina_host._storage import Database, open_database
from cloacina_host._storage import _queries as q
from cloacina_host._storage import _schedules as qs
from cloacina_workflow import Context, task, workflow

NAMESPACE = "public::timed_pkg::timed"
T0 = datetime(2026, 5, 1, 12, 0, 30, tzinfo=timezone.utc).timestamp()  # the schedule appears at 12:00:30
MINUTE = 60.0


@workflow(name="timed", package="timed_pkg")
class timed:
    @task(id="stamp")
    def stamp(ctx: Context) -> None:
        ctx.set("stamped", ctx.get("who"))


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def _catalog() -> WorkflowCatalog:
    catalog = WorkflowCatalog()
    catalog.add_workflow(timed, package="timed_pkg")
    return catalog


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.dispose()


def _declare(db: Database, *, cron: str = "* * * * *", catchup: str = "skip", max_catchup: int = 100) -> None:
    spec = qs.ScheduleSpec(NAMESPACE, "often", cron, "UTC", {"who": "cron"}, catchup, max_catchup)
    with db.write("declaring") as conn:
        qs.replace_schedules(conn, source="test", package_version=None, specs=[spec], now=T0)


def _scheduler(db: Database, clock: Clock, owner: str = "host-a") -> Scheduler:
    return Scheduler(db, _catalog(), tenant="public", owner=owner, now=clock)


def _executions(db: Database) -> list[str | None]:
    """What started each stored execution, oldest first."""
    with db.read("reading") as conn:
        records = q.list_executions(conn, tenant="public", limit=10_000)
    return sorted((r.started_by for r in records), key=str)


def test_skip_starts_one_execution_for_an_outage_and_restarts_never_fire_it_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloacina.db'}"
    first = open_database(url)
    _declare(first)
    clock = Clock(T0 + 10 * MINUTE + 5)  # the host was down for ten fire times: 12:01 .. 12:10
    fired = _scheduler(first, clock).tick()
    assert [(f.schedule, f.fire_at) for f in fired] == [("often", T0 - 30 + 10 * MINUTE)]
    first.dispose()
    for _restart in range(2):  # restarted twice in a row, each a new process's database and scheduler
        again = open_database(url)
        for _pass in range(37):  # however often its loop runs (upstream once fired 37 times too often)
            assert _scheduler(again, clock).tick() == []
        again.dispose()
    final = open_database(url)
    try:
        assert _executions(final) == ["schedule often at 2026-05-01T12:10:00Z"]
        clock.at += MINUTE  # 12:11:05: the next fire time comes, once
        assert len(_scheduler(final, clock).tick()) == 1
        assert _scheduler(final, clock).tick() == []
        assert len(_executions(final)) == 2
    finally:
        final.dispose()


def test_all_starts_each_missed_time_at_most_max_catchup(db: Database) -> None:
    _declare(db, catchup="all", max_catchup=4)
    clock = Clock(T0 + 10 * MINUTE + 5)
    fired = _scheduler(db, clock).tick()
    stamps = [datetime.fromtimestamp(f.fire_at, tz=timezone.utc).strftime("%H:%M") for f in fired]
    assert stamps == ["12:07", "12:08", "12:09", "12:10"]  # the latest four, oldest first
    assert _scheduler(db, clock).tick() == []
    assert len(_executions(db)) == 4


def test_all_without_a_cap_catches_up_every_missed_time_once(db: Database) -> None:
    _declare(db, catchup="all")
    clock = Clock(T0 + 10 * MINUTE + 5)
    assert len(_scheduler(db, clock).tick()) == 10
    assert _scheduler(db, clock).tick() == []
    assert len(set(_executions(db))) == 10


def test_history_before_the_schedule_appeared_is_never_backfilled(db: Database) -> None:
    _declare(db, catchup="all")
    assert _scheduler(db, Clock(T0 + 20)).tick() == []  # 12:00:50: 12:00 came before it was registered


def test_a_paused_schedule_does_not_fire_and_resuming_does_not_catch_up(db: Database) -> None:
    _declare(db, catchup="all")
    changed = set_paused(db, tenant="public", workflow="timed", name=None, paused=True, now=T0)
    assert [r.name for r in changed] == ["often"]
    clock = Clock(T0 + 5 * MINUTE)
    assert _scheduler(db, clock).tick() == []
    set_paused(db, tenant="public", workflow="timed_pkg::timed", name="often", paused=False, now=clock.at)
    assert _scheduler(db, clock).tick() == []  # the five minutes paused are not caught up
    clock.at += MINUTE
    assert len(_scheduler(db, clock).tick()) == 1
    assert _executions(db) == ["schedule often at 2026-05-01T12:06:00Z"]


def test_a_fired_execution_runs_to_its_end_with_the_schedules_context(database_url: str, db: Database) -> None:
    _declare(db)
    (fired,) = _scheduler(db, Clock(T0 + MINUTE)).tick()
    with DefaultRunner(database_url, catalog=_catalog()) as runner:  # recovery picks up the stored execution
        result = runner.wait_sync(fired.execution_id)
    assert result.status == "completed"
    assert result.context.get("stamped") == "cron"
    with db.read("reading") as conn:
        record = q.get_execution(conn, fired.execution_id)
    assert record is not None
    assert record.started_by == "schedule often at 2026-05-01T12:01:00Z"


@pytest.mark.postgres
def test_two_hosts_racing_the_same_fire_times_start_each_once(postgres_schema_url: str) -> None:
    a, b = open_database(postgres_schema_url), open_database(postgres_schema_url)
    try:
        _declare(a, catchup="all", max_catchup=100)
        clock = Clock(T0)
        hosts = [_scheduler(a, clock, "host-a"), _scheduler(b, clock, "host-b")]
        won: list[list[float]] = [[], []]
        for minute in range(1, 21):  # twenty fire times, both hosts ticking at the same instant each time
            clock.at = T0 + minute * MINUTE
            barrier = threading.Barrier(2)

            def run(i: int, barrier: threading.Barrier = barrier) -> None:
                barrier.wait(timeout=30)
                won[i].extend(f.fire_at for f in hosts[i].tick())

            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
        assert sorted(won[0] + won[1]) == [T0 - 30 + m * MINUTE for m in range(1, 21)]
        assert len(_executions(a)) == 20
        with a.read("reading") as conn:
            (row,) = qs.list_schedules(conn)
        assert row.last_fire_at == T0 - 30 + 20 * MINUTE
    finally:
        a.dispose()
        b.dispose()
