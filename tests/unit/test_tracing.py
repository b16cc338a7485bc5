"""Traces cost nothing when off, and say once what to install when asked for without the SDK (each in a
fresh interpreter: what it imports is the point). The spans: tests/acceptance/server/test_server_traces.py."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import sys
{block}
def otel():
    return {{m for m in sys.modules if m.split(".")[0] == "opentelemetry"}}
import fastapi  # FastAPI itself imports a part of OpenTelemetry's API
before = otel()
from cloacina_host import _tracing
from cloacina_host._server import _app  # the server, as `cloacina-ctl server` imports it
print(_tracing.observer("public"), _tracing.observer("acme"), _tracing.request_context())
print(sorted(otel() - before))
"""


def _run(block: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(block=block)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_without_an_endpoint_cloacina_imports_nothing_of_opentelemetry() -> None:
    done = _run("")
    assert done.stdout.splitlines() == ["None None None", "[]"]
    assert done.stderr == ""


def test_an_endpoint_without_the_sdk_warns_once_and_runs_on() -> None:
    # the SDK made unimportable, as in an environment without the `otel` extra
    done = _run("sys.modules['opentelemetry.sdk'] = None", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
    assert done.stdout.splitlines()[0] == "None None None"
    warnings = [line for line in done.stderr.splitlines() if "OTEL_EXPORTER_OTLP_ENDPOINT is set" in line]
    assert len(warnings) == 1, done.stderr
    assert "no traces are sent. Install them: pip install 'cloacina-host[otel]'" in warnings[0]
