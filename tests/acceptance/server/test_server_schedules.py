"""Schedules and triggers over the API: list, pause, resume, and a trigger fired by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_schedules_and_triggers(deployment: Any, reg_archives: dict[str, Path]) -> None:
    server = deployment.start()
    api = server.client(deployment.key("write"))
    reader = server.client(deployment.key("read"))
    for name in ("sched-1", "trig"):
        stored = api.post("/api/v1/packages", content=reg_archives[name].read_bytes())
        assert stored.status_code == 201, stored.text

    schedules = {
        s["name"]: s
        for s in reader.get("/api/v1/schedules").json()["schedules"]
        if s["workflow"] == "sched_flow::sched_flow"
    }
    assert set(schedules) == {"every_minute", "nightly"}
    assert schedules["nightly"]["timezone"] == "Europe/Berlin"
    assert schedules["every_minute"]["next_fire"]["utc"].endswith("Z")
    paused = api.post("/api/v1/schedules/sched_flow/pause").json()
    assert paused["paused"] is True
    assert sorted(c["name"] for c in paused["changed"]) == ["every_minute", "nightly"]
    assert {c["workflow"] for c in paused["changed"]} == {"sched_flow::sched_flow"}
    assert all(
        s["paused"]
        for s in reader.get("/api/v1/schedules").json()["schedules"]
        if s["workflow"] == "sched_flow::sched_flow"
    )
    resumed = api.post("/api/v1/schedules/sched_flow/resume", params={"name": "nightly"}).json()
    assert resumed["changed"] == [{"workflow": "sched_flow::sched_flow", "name": "nightly"}]
    unknown = api.post("/api/v1/schedules/no_such_flow/pause")
    assert unknown.status_code == 404, unknown.text

    triggers = {t["name"]: t for t in reader.get("/api/v1/triggers").json()["triggers"] if t["package"] == "trig_flow"}
    assert set(triggers) == {"on_file", "broken", "stuck"}
    assert triggers["on_file"]["workflows"] == ["trig_flow::collect", "trig_flow::notify"]
    assert api.post("/api/v1/triggers/trig_flow::broken/pause").json() == {
        "trigger": "trig_flow::broken",
        "paused": True,
        "changed": True,
    }
    assert api.post("/api/v1/triggers/trig_flow::broken/pause").json()["changed"] is False
    assert api.post("/api/v1/triggers/trig_flow::broken/resume").json()["changed"] is True
    # paused triggers can still be fired by hand; none polls while the fired executions run
    for name in ("stuck", "broken", "on_file"):
        assert api.post(f"/api/v1/triggers/trig_flow::{name}/pause").json()["paused"] is True
    fired = api.post("/api/v1/triggers/trig_flow::on_file/fire", json={"context": {"item": 7}})
    assert fired.status_code == 201, fired.text
    started = {e["workflow"]: e["execution_id"] for e in fired.json()["executions"]}
    assert set(started) == {"trig_flow::collect", "trig_flow::notify"}
    took = deployment.wait_status(reader, started["trig_flow::collect"], {"completed", "failed"})
    assert took["status"] == "completed", (took["error"], [(t["task_id"], t["error"]) for t in took["tasks"]])
    assert took["final_context"]["took"] == 7
    assert took["started_by"] == "trigger on_file"
    missing = api.post("/api/v1/triggers/no_such_trigger/fire", json={})
    assert missing.status_code == 404
    assert reader.post("/api/v1/triggers/trig_flow::on_file/fire", json={}).status_code == 403
