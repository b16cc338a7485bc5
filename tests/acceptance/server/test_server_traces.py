"""OpenTelemetry traces from a real server to a real OTLP/HTTP receiver on loopback: a span per execution
and per task attempt, and the attempt's span in the package's worker process, all in one trace."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

pytestmark = pytest.mark.slow


class Receiver:
    """An OTLP/HTTP trace receiver: ``POST /v1/traces`` (protobuf), every span kept as a dict."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.keep(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def keep(self, request: ExportTraceServiceRequest) -> None:
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}.get("service.name")
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {
                        a.key: (a.value.int_value if a.value.HasField("int_value") else a.value.string_value)
                        for a in span.attributes
                    }
                    with self.lock:
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace": span.trace_id.hex(),
                                "id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "attributes": attributes,
                                "status": span.status.code,
                                "service": service,
                            }
                        )

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["name"] == name]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


def test_an_execution_is_traced_across_the_worker_process(
    deployment: Any, receiver: Receiver, reg_archives: dict[str, Path]
) -> None:
    deployment.env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    key = deployment.key("write")
    server = deployment.start()
    api = server.client(key)
    uploaded = api.post("/api/v1/packages", content=reg_archives["swap-1"].read_bytes())
    assert uploaded.status_code == 201, uploaded.text
    gate = deployment.tmp / "gate"
    gate.touch()
    eid = api.post("/api/v1/executions", json={"workflow": "swap_flow", "context": {"gate": str(gate)}}).json()[
        "execution_id"
    ]
    assert deployment.wait_status(api, eid, {"completed", "failed"})["status"] == "completed"
    failing = api.post("/api/v1/executions", json={"workflow": "cli_failing"}).json()["execution_id"]
    assert deployment.wait_status(api, failing, {"completed", "failed"})["status"] == "failed"

    def spans_of(execution_id: str, runs: int) -> dict[str, list[dict[str, Any]]] | None:
        executions = [
            s for s in receiver.named("cloacina.execution") if s["attributes"]["cloacina.execution_id"] == execution_id
        ]
        if not executions:
            return None
        trace = executions[0]["trace"]
        found = {
            name: [s for s in receiver.named(name) if s["trace"] == trace]
            for name in ("cloacina.task", "cloacina.task.run")
        }
        ended = len(found["cloacina.task.run"]) >= runs
        return {"cloacina.execution": executions, **found} if ended else None

    traced = deployment.until("the execution's spans to reach the receiver", lambda: spans_of(eid, 2))
    (execution,) = traced["cloacina.execution"]
    assert execution["parent"] == ""
    assert execution["attributes"] == {
        "cloacina.tenant": "public",
        "cloacina.workflow": "public::reg_swap::swap_flow",
        "cloacina.execution_id": eid,
        "cloacina.status": "completed",
    }
    assert execution["service"] == "cloacina"
    attempts = {s["attributes"]["cloacina.task"]: s for s in traced["cloacina.task"]}
    assert sorted(attempts) == ["finish", "work"]
    for task, span in attempts.items():
        assert span["parent"] == execution["id"], task
        assert span["attributes"] == {
            "cloacina.tenant": "public",
            "cloacina.workflow": "public::reg_swap::swap_flow",
            "cloacina.execution_id": eid,
            "cloacina.task": task,
            "cloacina.attempt": 1,
            "cloacina.status": "completed",
        }
    runs = {s["attributes"]["cloacina.task"]: s for s in traced["cloacina.task.run"]}
    assert sorted(runs) == ["finish", "work"]
    for task, span in runs.items():  # made in the worker process, children of the host's attempt spans
        assert span["parent"] == attempts[task]["id"], task
        assert span["attributes"]["cloacina.status"] == "completed"
        assert span["attributes"]["process.pid"] != server.proc.pid

    # an in-process task that fails, is retried once, and fails again: one span per attempt
    failed = deployment.until("the failing execution's spans", lambda: spans_of(failing, 0))
    (execution,) = failed["cloacina.execution"]
    assert execution["attributes"]["cloacina.status"] == "failed"
    by_attempt = sorted(
        (s["attributes"]["cloacina.task"], s["attributes"]["cloacina.attempt"], s["attributes"]["cloacina.status"])
        for s in failed["cloacina.task"]
    )
    assert ("breaks", 1, "retrying") in by_attempt
    assert ("breaks", 2, "failed") in by_attempt
    assert all(s["parent"] == execution["id"] for s in failed["cloacina.task"])
    assert failed["cloacina.task.run"] == []  # a plugin's task runs in the server's own process
