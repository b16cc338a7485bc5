"""Triggers end to end: ``inspect`` shows them, ``triggers`` controls them, a real ``serve`` polls them.

The registered package is ``tests/packages/trig-flow``: ``on_file`` fires (every 0.3 s poll) when a
gate file appears and starts ``collect`` and ``notify`` once each; ``broken`` raises and ``stuck``
hangs past its timeout at every poll, and neither stops ``on_file``.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloacina_host._storage import _queries as q
from cloacina_host._storage import _triggers as qt
from cloacina_host._storage import open_database
from cloacina_host.cli import main

pytestmark = pytest.mark.slow

SERVING = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_serving", "serving.py"
)
ctl_json, start_serve, stop_serve, until = (
    SERVING.ctl_json,
    SERVING.start_serve,
    SERVING.stop_serve,
    SERVING.until,
)


def _executions(database_url: str) -> list[tuple[str, str | None, str, Any]]:
    """(workflow, started_by, status, final context) of every execution."""
    db = open_database(database_url)
    try:
        with db.read("reading") as conn:
            records = q.list_executions(conn, tenant="public", limit=1000)
            full = [q.get_execution(conn, r.id) for r in records]
        found = [(r.namespace.split("::", 1)[1], r.started_by, str(r.status), r.context_out or {}) for r in full if r]
        return sorted(found, key=lambda e: (e[0], str(e[1]), json.dumps(e[3], sort_keys=True)))
    finally:
        db.dispose()


def test_inspect_shows_the_triggers(reg_archives: dict[str, Path], capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    assert main(["inspect", str(reg_archives["trig"])]) == 0
    text = capfd.readouterr().out
    assert "on_file: polled every 0.3 s (timeout 1 s)" in text
    assert "stuck: polled every 1 s (timeout 0.5 s)" in text
    printed = ctl_json(capfd, "inspect", str(reg_archives["trig"]))
    assert [t["name"] for t in printed["workflows"][0]["triggers"]] == ["on_file", "broken", "stuck"]
    assert [t["name"] for t in printed["workflows"][1]["triggers"]] == ["on_file"]


def test_serve_polls_the_triggers_of_a_registered_package(
    database_url: str,
    tmp_path: Path,
    reg_archives: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", database_url)
    monkeypatch.setenv("TRIG_FLOW_DIR", str(tmp_path))
    assert main(["register", str(reg_archives["trig"])]) == 0
    listed = {t["trigger"]: t for t in ctl_json(capfd, "triggers", "list")["triggers"]}
    assert listed["trig_flow::on_file"]["workflows"] == ["trig_flow::collect", "trig_flow::notify"]
    assert listed["trig_flow::on_file"]["poll_interval_s"] == 0.3

    unknown = ctl_json(capfd, "triggers", "fire", "no_such_trigger", status=3)
    assert "No live trigger 'no_such_trigger'" in unknown["error"]
    assert ctl_json(capfd, "triggers", "pause", "no_such_trigger", status=3)["error"]

    # by hand: one queued execution per subscribed workflow, with the given context
    fired = ctl_json(capfd, "triggers", "fire", "on_file", "--context", '{"item": "by hand"}')
    assert [e["workflow"] for e in fired["executions"]] == ["trig_flow::collect", "trig_flow::notify"]
    assert ctl_json(capfd, "triggers", "pause", "trig_flow::broken") == {"trigger": "trig_flow::broken", "paused": True}

    proc = start_serve(tmp_path / "serve.log")
    try:

        def finished(count: int) -> Callable[[], Any]:
            def check() -> Any:
                found = _executions(database_url)
                return len(found) == count and all(e[2] == "completed" for e in found) and found

            return check

        until("the executions fired by hand to run", finished(2), proc)
        (tmp_path / "fire").write_text('{"item": "polled"}', encoding="utf-8")
        found = until("on_file to fire from its poll and both workflows to run", finished(4), proc)
        polled = [e for e in found if e[3].get("item") == "polled"]
        assert [(e[0], e[1]) for e in polled] == [
            ("trig_flow::collect", "trigger on_file"),
            ("trig_flow::notify", "trigger on_file"),
        ]
        assert polled[0][3]["took"] == "polled"

        def stuck_reported() -> Any:
            rows = {t["trigger"]: t for t in ctl_json(capfd, "triggers", "list")["triggers"]}
            return rows["trig_flow::stuck"]["last_error"] and rows

        rows = until("the hanging trigger to be reported", stuck_reported, proc)
        assert "did not finish within its timeout of 0.5 s" in rows["trig_flow::stuck"]["last_error"]["error"]
        assert rows["trig_flow::broken"]["paused"] is True
        assert rows["trig_flow::broken"]["last_poll"] is None  # paused before any host polled it

        # the failing trigger does not stop the others: on_file fires again
        assert ctl_json(capfd, "triggers", "resume", "broken")["resumed"] is True
        (tmp_path / "fire").write_text('{"item": "again"}', encoding="utf-8")
        until("on_file to fire a second time", finished(6), proc)

        def broken_reported() -> Any:
            rows = {t["trigger"]: t for t in ctl_json(capfd, "triggers", "list")["triggers"]}
            return rows["trig_flow::broken"]["last_error"]

        error = until("the raising trigger to be reported", broken_reported, proc)
        assert "RuntimeError: broken on purpose" in error["error"]
    finally:
        stop_serve(proc)
    log = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert "trigger stuck of trig_flow failed" in log
    assert "Traceback" not in log


FIRINGS = 6


@pytest.mark.postgres
def test_two_serving_hosts_on_postgresql_start_each_firing_once(
    postgres_schema_url: str,
    tmp_path: Path,
    reg_archives: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Two real ``serve`` processes poll ``on_file`` of one PostgreSQL: each firing starts ``collect`` and
    ``notify`` once each, whichever host polled it (the database decides which host polls an interval)."""
    database_url = postgres_schema_url
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", database_url)
    monkeypatch.setenv("TRIG_FLOW_DIR", str(tmp_path))
    assert main(["register", str(reg_archives["trig"])]) == 0
    for quiet in ("broken", "stuck"):  # only on_file polls: the hosts' logs stay about it
        assert ctl_json(capfd, "triggers", "pause", quiet)["paused"] is True
    pollers: set[str] = set()

    def on_file() -> qt.TriggerRow:
        db = open_database(database_url)
        try:
            with db.read("reading") as conn:
                row = next(r for r in qt.list_triggers(conn) if r.name == "on_file")
        finally:
            db.dispose()
        if row.polled_by is not None:
            pollers.add(row.polled_by)
        return row

    procs = [start_serve(tmp_path / "serve-a.log"), start_serve(tmp_path / "serve-b.log")]
    try:
        # both hosts poll, and their package's workers have started: a first poll that times out while its
        # worker starts would consume a file and drop what it read (the trigger's own timeout)
        until("both hosts to poll on_file", lambda: on_file() and len(pollers) == 2, procs)
        warm = time.time() + 2 * on_file().timeout_s
        until(
            "on_file to poll without error once both workers started",
            lambda: (row := on_file()).last_poll_at is not None and row.last_poll_at > warm > (row.last_error_at or 0),
            procs,
        )
        for i in range(FIRINGS):
            staged = tmp_path / "fire.part"
            staged.write_text(json.dumps({"item": f"firing {i}"}), encoding="utf-8")
            os.replace(staged, tmp_path / "fire")  # a poll never reads half a file

            def fired(item: str = f"firing {i}") -> Any:
                on_file()
                runs = [e for e in _executions(database_url) if e[3].get("item") == item]
                return len(runs) >= 2 and all(e[2] == "completed" for e in runs)

            until(f"firing {i} to start both workflows", fired, procs)
        # any poll that read the last file before it was gone has ended once a poll claimed after its timeout
        settled = time.time() + on_file().timeout_s
        until("a poll after the last firing's polls", lambda: (on_file().last_poll_at or 0.0) > settled, procs)
    finally:
        for proc in procs:
            stop_serve(proc)
    found = [(e[0], e[1], e[3].get("item")) for e in _executions(database_url)]
    expected = [
        (workflow, "trigger on_file", f"firing {i}")
        for workflow in ("trig_flow::collect", "trig_flow::notify")
        for i in range(FIRINGS)
    ]
    assert sorted(found) == sorted(expected)  # each firing started each subscribed workflow exactly once
    assert len(pollers) == 2  # the hosts shared the polls: the database decided which one polled each time
    for log in ("serve-a.log", "serve-b.log"):
        assert "Traceback" not in (tmp_path / log).read_text(encoding="utf-8")
