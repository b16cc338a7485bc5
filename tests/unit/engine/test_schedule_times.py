"""Due fire times and catch-up, computed with a fake clock (seconds since the epoch), DST included."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from cloacina_host._engine._schedules import due_fire_times, fire_label
from cloacina_workflow._schedule import fire_times_after

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def ts(*args: int, tz: timezone | ZoneInfo = UTC, fold: int = 0) -> float:
    return datetime(*args, tzinfo=tz, fold=fold).timestamp()  # type: ignore[misc]


def utc(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M")


def due(
    cron: str, after: float, now: float, *, catchup: str = "skip", max_catchup: int = 100, tz: str = "UTC"
) -> list[str]:
    return [utc(t) for t in due_fire_times(cron, tz, catchup=catchup, max_catchup=max_catchup, after=after, now=now)]


def test_skip_starts_one_execution_for_the_latest_missed_time() -> None:
    assert due("* * * * *", ts(2026, 5, 1, 12, 0, 30), ts(2026, 5, 1, 12, 5, 10)) == ["2026-05-01 12:05"]


def test_all_starts_each_missed_time_oldest_first() -> None:
    assert due("* * * * *", ts(2026, 5, 1, 12, 0, 30), ts(2026, 5, 1, 12, 5, 10), catchup="all") == [
        "2026-05-01 12:01",
        "2026-05-01 12:02",
        "2026-05-01 12:03",
        "2026-05-01 12:04",
        "2026-05-01 12:05",
    ]


def test_all_keeps_only_the_latest_max_catchup_times() -> None:
    got = due("* * * * *", ts(2026, 5, 1, 12, 0, 30), ts(2026, 5, 1, 12, 5, 10), catchup="all", max_catchup=2)
    assert got == ["2026-05-01 12:04", "2026-05-01 12:05"]


def test_a_time_already_fired_or_not_yet_come_is_not_due() -> None:
    last = ts(2026, 5, 1, 12, 5)
    assert due("* * * * *", last, ts(2026, 5, 1, 12, 5, 59)) == []
    assert due("* * * * *", last, ts(2026, 5, 1, 12, 6)) == ["2026-05-01 12:06"]  # due the moment it comes
    assert due("* * * * *", last, last) == []


def test_a_long_outage_costs_only_the_times_returned() -> None:
    after, now = ts(2025, 1, 1), ts(2026, 1, 1, 0, 0, 30)  # a year of every-minute fire times missed
    assert due("* * * * *", after, now) == ["2026-01-01 00:00"]
    assert len(due("* * * * *", after, now, catchup="all", max_catchup=100)) == 100


def test_a_fixed_local_time_that_does_not_exist_fires_once_just_after_the_gap() -> None:
    # Europe/Berlin springs forward on 2026-03-29: 02:00-03:00 does not exist; 02:30 fires at 03:00 CEST
    got = due(
        "30 2 * * *", ts(2026, 3, 28, 12, tz=BERLIN), ts(2026, 3, 29, 12, tz=BERLIN), catchup="all", tz="Europe/Berlin"
    )
    assert got == ["2026-03-29 01:00"]  # 03:00 CEST
    # an expression with a wildcard hour just has no fire times inside the gap
    got = due(
        "*/30 * * * *",
        ts(2026, 3, 29, 1, 45, tz=BERLIN),
        ts(2026, 3, 29, 3, 45, tz=BERLIN),
        catchup="all",
        tz="Europe/Berlin",
    )
    assert got == ["2026-03-29 01:00", "2026-03-29 01:30"]  # 03:00 and 03:30 CEST; no 02:00 or 02:30


def test_a_fixed_local_time_that_happens_twice_fires_once() -> None:
    # Europe/Berlin falls back on 2026-10-25: 02:00-03:00 happens twice; 02:30 fires at its first occurrence only
    got = due(
        "30 2 * * *",
        ts(2026, 10, 24, 12, tz=BERLIN),
        ts(2026, 10, 25, 12, tz=BERLIN),
        catchup="all",
        tz="Europe/Berlin",
    )
    assert got == ["2026-10-25 00:30"]  # 02:30 CEST
    # a wildcard hour fires in both occurrences: every real half hour
    got = due(
        "*/30 * * * *",
        ts(2026, 10, 25, 1, 45, tz=BERLIN),
        ts(2026, 10, 25, 3, 0, tz=BERLIN),
        catchup="all",
        tz="Europe/Berlin",
    )
    assert got == ["2026-10-25 00:00", "2026-10-25 00:30", "2026-10-25 01:00", "2026-10-25 01:30", "2026-10-25 02:00"]


def test_next_fire_times_follow_the_time_zone() -> None:
    after = ts(2026, 3, 28, 12, tz=BERLIN)
    got = [utc(t) for t in fire_times_after("30 2 * * *", "Europe/Berlin", after, 3)]
    assert got == ["2026-03-29 01:00", "2026-03-30 00:30", "2026-03-31 00:30"]  # CET, then the gap, then CEST


def test_an_execution_records_the_schedule_and_fire_time_that_started_it() -> None:
    assert fire_label("nightly", ts(2026, 12, 1, 3)) == "schedule nightly at 2026-12-01T03:00:00Z"
