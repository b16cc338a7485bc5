"""Triggers end to end: ``inspect`` shows them, ``triggers`` controls them, a real ``serve`` polls them.

The registered package is ``tests/packages/trig-flow``: ``on_file`` fires (every 0.3 s poll) when a
gate file appears and starts ``collect`` and ``notify`` once each; ``broken`` raises and ``stuck``
hangs past its timeout at every poll, and neither stops ``on_file``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
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
