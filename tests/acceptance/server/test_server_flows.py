"""The API end to end on a real server: upload → submit → poll → logs → cancel → retry → rerun; the
refusals (413 before reading, 422 naming the field); the event streams; metrics; a graceful SIGTERM."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name{labels}`` in a Prometheus exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        m = re.fullmatch(rf"{re.escape(name)}\{{([^}}]*)\}} (\S+)", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            total += float(m.group(2))
    return total


def _upload(client: httpx.Client, archive: Path, **params: Any) -> httpx.Response:
    return client.post(
        "/api/v1/packages",
        content=archive.read_bytes(),
        params={"filename": archive.name, **params},
        headers={"Content-Type": "application/octet-stream"},
    )


def test_upload_run_watch_logs_cancel_retry_rerun(deployment: Any, reg_archives: dict[str, Path]) -> None:
    key = deployment.key("write", name="ci")
    server = deployment.start()
    api = server.client(key)
    before = server.client().get("/metrics").text

    uploaded = _upload(api, reg_archives["swap-1"])
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["status"] == "registered"
    assert uploaded.json()["active"] is True
    assert _upload(api, reg_archives["swap-1"]).json()["status"] == "unchanged"  # the same bytes: a no-op
    listed = api.get("/api/v1/packages").json()
    assert [p["name"] for p in listed["packages"]] == ["reg-swap"]
    shown = api.get("/api/v1/packages/reg-swap").json()
    assert shown["versions"][0]["workflows"][0]["tasks"] == ["work", "finish"]
    workflows = {w["namespace"]: w for w in api.get("/api/v1/workflows").json()["workflows"]}
    graph = workflows["public::reg_swap::swap_flow"]["graph"]
    assert graph == [{"task_id": "work", "dependencies": []}, {"task_id": "finish", "dependencies": ["work"]}]

    # submit, poll to completion, read the logs
    gate = deployment.tmp / "gate-1"
    gate.touch()
    submitted = api.post("/api/v1/executions", json={"workflow": "swap_flow", "context": {"gate": str(gate)}})
    assert submitted.status_code == 201, submitted.text
    first = submitted.json()["execution_id"]
    done = deployment.wait_status(api, first, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert [t["status"] for t in done["tasks"]] == ["completed", "completed"]
    assert done["final_context"]["version"] == "1.0.0"
    logs = api.get(f"/api/v1/executions/{first}/logs").json()
    texts = [line["text"] for a in logs["attempts"] for line in a["output"]]
    assert "reg-swap 1.0.0 working" in texts
    assert any(e["id"] == first for e in api.get("/api/v1/executions").json()["executions"])

    # cancel one that waits on a gate, then retry it: it runs again and completes
    gate2 = deployment.tmp / "gate-2"
    waiting = api.post("/api/v1/executions", json={"workflow": "reg_swap::swap_flow", "context": {"gate": str(gate2)}})
    second = waiting.json()["execution_id"]
    deployment.until(
        "the task to run",
        lambda: api.get(f"/api/v1/executions/{second}").json()["tasks"][0]["status"] == "running",
    )
    cancelled = api.post(f"/api/v1/executions/{second}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["ended"] is True
    assert deployment.wait_status(api, second, {"cancelled"})["events"][0]["actor"].startswith("api-key ")
    again = api.post(f"/api/v1/executions/{second}/cancel")
    assert again.status_code == 409
    assert (
        again.json()["error"] == f"Execution {second} already ended with status cancelled; there is nothing to cancel."
    )
    gate2.touch()
    retried = api.post(f"/api/v1/executions/{second}/retry", json={})
    assert retried.status_code == 200, retried.text
    assert deployment.wait_status(api, second, {"completed", "failed"})["status"] == "completed"

    # a failing workflow (an installed plugin), retried: its failed task runs again, and fails again
    failing = api.post("/api/v1/executions", json={"workflow": "cli_failing"}).json()["execution_id"]
    failed = deployment.wait_status(api, failing, {"completed", "failed"})
    assert failed["status"] == "failed"
    breaks = next(t for t in failed["tasks"] if t["task_id"] == "breaks")
    assert len(breaks["attempts"]) == 2
    assert "bad thing happened" in breaks["attempts"][-1]["error"]
    assert api.post(f"/api/v1/executions/{failing}/retry").status_code == 200
    deployment.until(
        "the retry's attempts",
        lambda: (
            len(
                next(t for t in api.get(f"/api/v1/executions/{failing}").json()["tasks"] if t["task_id"] == "breaks")[
                    "attempts"
                ]
            )
            == 4
        ),
    )
    assert deployment.wait_status(api, failing, {"failed"})["status"] == "failed"
    rerun = api.post(f"/api/v1/executions/{first}/rerun")
    assert rerun.status_code == 201, rerun.text
    rerun_id = rerun.json()["execution_id"]
    assert deployment.wait_status(api, rerun_id, {"completed"})["rerun_of"] == first

    after = server.client().get("/metrics").text
    started = _metric(after, "cloacina_executions_started_total", tenant="public")
    assert started - _metric(before, "cloacina_executions_started_total", tenant="public") >= 4
    assert _metric(after, "cloacina_executions_finished_total", tenant="public", status="completed") >= 3
    assert _metric(after, "cloacina_executions_finished_total", tenant="public", status="failed") >= 1
    assert _metric(after, "cloacina_tasks_finished_total", tenant="public", status="failed") >= 1
    assert _metric(after, "cloacina_task_duration_seconds_count", tenant="public", status="completed") >= 4
    assert "cloacina_queue_depth" in after
    assert "cloacina_workers_alive" in after
    assert server.stop() == 0


def test_refusals_413_before_reading_and_422_naming_the_field(
    deployment: Any, reg_archives: dict[str, Path], cli_flows_site: Path
) -> None:
    key = deployment.key("write")
    typed = reg_archives["typed"]
    limit = typed.stat().st_size + 100
    server = deployment.start("--max-archive-size", str(limit))
    api = server.client(key)
    big = b"x" * (limit + 1)

    declared = api.post("/api/v1/packages", content=big, params={"filename": "big.cloacina"})
    assert declared.status_code == 413
    message = (
        f"big.cloacina: is {limit + 1:,} bytes, more than the limit of {limit:,} (MAX_ARCHIVE_SIZE) "
        "for a .cloacina file."
    )
    assert declared.json()["error"] == message

    def chunks() -> Any:  # no Content-Length: counted as it streams
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    streamed = api.post("/api/v1/packages", content=chunks(), params={"filename": "big.cloacina"})
    assert streamed.status_code == 413
    assert (
        streamed.json()["error"]
        == f"big.cloacina: is more than the limit of {limit:,} (MAX_ARCHIVE_SIZE) for a .cloacina file."
    )
    form = api.post("/api/v1/packages", files={"file": ("big.cloacina", big)}, params={"filename": "big.cloacina"})
    assert form.status_code == 413
    not_an_archive = api.post("/api/v1/packages", content=b"PK not a zip", params={"filename": "junk.cloacina"})
    assert not_an_archive.status_code == 400
    assert not_an_archive.json()["error"].startswith("junk.cloacina: ")  # named as `register` names a file
    assert api.get("/api/v1/packages").json()["packages"] == []  # nothing a refused upload sent is stored

    ok = api.post("/api/v1/packages", files={"file": (typed.name, typed.read_bytes())})  # a form under the limit
    assert ok.status_code == 201, ok.text

    bad_body = api.post("/api/v1/executions", json={"workflow": "nightly_report", "context": ["not", "an", "object"]})
    assert bad_body.status_code == 422
    assert bad_body.json()["problems"] == ["context: Input should be a valid dictionary"]
    missing = api.post("/api/v1/executions", json={"context": {}})
    assert missing.status_code == 422
    assert "workflow: Field required" in missing.json()["error"]
    typed_input = api.post("/api/v1/executions", json={"workflow": "nightly_report", "context": {"day": "someday"}})
    assert typed_input.status_code == 422, typed_input.text
    assert "'day'" in typed_input.json()["error"]
    assert typed_input.json()["exit_status"] == 1
    assert api.get("/api/v1/executions").json()["executions"] == []  # nothing stored
    unknown = api.post("/api/v1/executions", json={"workflow": "no_such_flow"})
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("No workflow named 'no_such_flow'.")
    assert unknown.json()["exit_status"] == 3


def _events(response: httpx.Response, into: list[tuple[str, dict[str, Any]]], ready: threading.Event) -> None:
    """Read the stream's events into ``into`` until it ends; an error ends it as ``("error", {...})``."""
    try:
        _read(response, into, ready)
    except httpx.HTTPError as exc:
        into.append(("error", {"error": repr(exc)}))


def _read(response: httpx.Response, into: list[tuple[str, dict[str, Any]]], ready: threading.Event) -> None:
    kind = None
    for line in response.iter_lines():
        if line.startswith(": connected"):
            ready.set()
        elif line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: ") and kind is not None:
            into.append((kind, json.loads(line[len("data: ") :])))


def test_event_streams_and_a_graceful_sigterm(deployment: Any, reg_archives: dict[str, Path]) -> None:
    key = deployment.key("read")
    writer = deployment.key("write")
    server = deployment.start()
    api, write = server.client(key), server.client(writer)
    seen: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()
    with api.stream("GET", "/api/v1/events") as stream:
        reader = threading.Thread(target=_events, args=(stream, seen, ready), daemon=True)
        reader.start()
        assert ready.wait(60)
        execution = write.post("/api/v1/executions", json={"workflow": "cli_demo", "context": {"name": "sse"}})
        eid = execution.json()["execution_id"]
        deployment.until(
            "the tenant stream to see it complete",
            lambda: any(
                k == "execution" and d["execution"]["id"] == eid and d["execution"]["status"] == "completed"
                for k, d in seen
            ),
        )
        one: list[tuple[str, dict[str, Any]]] = []
        with api.stream("GET", f"/api/v1/executions/{eid}/events") as own:
            _events(own, one, threading.Event())  # an ended execution: its state, then the stream ends
        assert [(k, d.get("task_id")) for k, d in one] == [("task", "greet"), ("task", "shout"), ("execution", None)]
        assert one[-1][1]["execution"]["status"] == "completed"
        assert all(d["status"] == "completed" for k, d in one if k == "task")

        # SIGTERM with the stream open and an execution running: the stream ends, the server exits 0
        assert _upload(write, reg_archives["swap-1"]).status_code == 201
        gate = deployment.tmp / "gate"
        running = write.post("/api/v1/executions", json={"workflow": "swap_flow", "context": {"gate": str(gate)}})
        assert running.status_code == 201
        waiting = running.json()["execution_id"]
        deployment.until(
            "the task to run",
            lambda: api.get(f"/api/v1/executions/{waiting}").json()["tasks"][0]["status"] == "running",
        )
        assert server.terminate() == 0
        reader.join(60)
        assert not reader.is_alive()  # the server ended the stream rather than leaving it hanging
        assert [e for e in seen if e[0] == "error"] == []  # ended cleanly, not cut
    output = server.output()
    assert "stopping: finishing the requests in flight" in output
    assert "1 execution(s) still running are left to resume later" in output
    assert "Traceback" not in output
    # the next server resumes it
    again = deployment.start()
    gate.touch()
    assert deployment.wait_status(again.client(key), waiting, {"completed", "failed"})["status"] == "completed"
