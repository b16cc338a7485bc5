"""stdout carries only the result; what tasks print goes to stderr; a closed stdout or stderr fails nothing.

Real ``cloacina-ctl`` processes: a plugin whose tasks print to stdout and stderr (from Python, from
fd 1 directly, and from a child process), and a registered package whose worker process prints.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TIMEOUT_S = 120  # only so that a broken command fails the test instead of hanging it

SERVING = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_serving", "serving.py"
)
ctl_path = SERVING.ctl_path


def until(what: str, check: Callable[[], Any], proc: subprocess.Popen[str]) -> Any:
    return SERVING.until(what, check, proc, timeout_s=TIMEOUT_S, name="the process")


LOUD_SOURCE = """
import os
import subprocess
import sys

from cloacina_workflow import Context, task, workflow

print("loud plugin imported")  # import-time output: discovery runs it for every command


@workflow(name="loud", package="loud_pkg", description="Tasks that print everywhere")
class loud:
    @task
    def talk(ctx: Context) -> None:
        for i in range(3000):  # more than a pipe holds
            print(f"stdout line {i}")
        print("a line to stderr", file=sys.stderr)
        os.write(1, b"written to fd 1\\n")
        subprocess.run([sys.executable, "-c", "print('from a child process')"], check=True)
        ctx.set("said", 3000)

    @task(dependencies=["talk"])
    async def more(ctx: Context) -> None:
        print("the async task speaks")
        ctx.set("done", True)
"""

RESULT = {"said": 3000, "done": True}


@pytest.fixture(scope="module")
def loud_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("loud-site")
    (site / "cloacina_loud_flows.py").write_text(LOUD_SOURCE, encoding="utf-8")
    info = site / "cloacina_loud_flows-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cloacina-loud-flows\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[cloacina.workflows]\nloud = cloacina_loud_flows:loud\n")
    return site


@pytest.fixture
def env(loud_site: Path, tmp_path: Path) -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith("CLOACINA_")}
    found["CLOACINA_HOME"] = str(tmp_path / "home")
    found["PYTHONPATH"] = os.pathsep.join([str(loud_site), *filter(None, [os.environ.get("PYTHONPATH")])])
    return found


def ctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ctl_path(), *args], capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False)


def executions(env: dict[str, str]) -> list[dict[str, Any]]:
    proc = ctl(env, "executions", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    found: list[dict[str, Any]] = json.loads(proc.stdout)["executions"]
    return found


def test_run_prints_only_the_result_on_stdout(env: dict[str, str]) -> None:
    proc = ctl(env, "run", "loud", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # `| python -m json.tool` works: nothing else is on stdout
    assert (result["status"], result["context"]) == ("completed", RESULT)
    for line in ("loud plugin imported", "stdout line 2999", "a line to stderr", "written to fd 1"):
        assert line in proc.stderr.splitlines()
    assert "from a child process" in proc.stderr
    assert "the async task speaks" in proc.stderr

    plain = ctl(env, "run", "loud")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout) == RESULT
    listed = ctl(env, "workflows", "list", "--json")
    assert "public::loud_pkg::loud" in [w["namespace"] for w in json.loads(listed.stdout)["workflows"]]


def test_a_registered_packages_prints_go_to_stderr(env: dict[str, str], reg_archives: dict[str, Path]) -> None:
    registered = ctl(env, "register", str(reg_archives["swap-1"]), "--json")
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["status"] == "registered"
    proc = ctl(env, "run", "reg_swap::swap_flow", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["context"]["version"] == "1.0.0"
    assert "reg-swap 1.0.0 working" in proc.stderr.splitlines()


def _run_with_closed(env: dict[str, str], stream: str) -> subprocess.Popen[str]:
    """``cloacina-ctl run loud`` whose stdout or stderr has no reader from the start (as after ``| head -1``)."""
    proc = subprocess.Popen(
        [ctl_path(), "run", "loud"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    getattr(proc, stream).close()  # the only reader: what the command writes there meets EPIPE
    return proc


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_a_closed_stdout_or_stderr_fails_nothing(env: dict[str, str], closed: str) -> None:
    proc = _run_with_closed(env, closed)
    reader = proc.stderr if closed == "stdout" else proc.stdout
    assert reader is not None
    try:
        other = reader.read()
        status = proc.wait(timeout=TIMEOUT_S)
    finally:
        proc.kill()
        reader.close()
    assert status == 0, other
    if closed == "stdout":
        assert "Traceback" not in other
        assert "BrokenPipe" not in other
        assert "stdout line 2999" in other.splitlines()
    else:
        assert json.loads(other) == RESULT
    assert [e["status"] for e in executions(env)] == ["completed"]


def test_stdout_closed_by_head_keeps_the_execution_and_exit_status(env: dict[str, str]) -> None:
    shell = f"set -o pipefail; '{ctl_path()}' run loud | head -1"
    proc = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "{\n"
    assert "Traceback" not in proc.stderr
    assert [e["status"] for e in executions(env)] == ["completed"]


@pytest.fixture
def mute() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a long-running command whose stdout and stderr readers have both gone; killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([ctl_path(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT_S)


def _finished(env: dict[str, str], execution_id: str) -> str | None:
    shown = ctl(env, "executions", "show", execution_id, "--json")
    status: str = json.loads(shown.stdout)["status"]
    return status if status not in ("queued", "running", "pending") else None


def test_serve_with_closed_stdout_and_stderr_runs_executions_and_stops_on_sigterm(
    env: dict[str, str], reg_archives: dict[str, Path], mute: Callable[..., subprocess.Popen[str]]
) -> None:
    assert ctl(env, "register", str(reg_archives["swap-1"])).returncode == 0
    serve = mute(env, "serve", "--interval", "0.2")
    ids = []
    for workflow in ("loud", "reg_swap::swap_flow"):
        detached = ctl(env, "run", workflow, "--detach")
        assert detached.returncode == 0, detached.stderr
        ids.append(detached.stdout.strip())
    for execution_id in ids:
        assert until(f"execution {execution_id}", lambda i=execution_id: _finished(env, i), serve) == "completed"
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=TIMEOUT_S) == 0


@pytest.mark.postgres
def test_a_worker_with_closed_stdout_and_stderr_runs_tasks_and_stops_on_sigterm(
    env: dict[str, str], postgres_schema_url: str, mute: Callable[..., subprocess.Popen[str]]
) -> None:
    env = {**env, "CLOACINA_DATABASE_URL": postgres_schema_url}
    detached = ctl(env, "run", "loud", "--distributed", "--detach")
    assert detached.returncode == 0, detached.stderr
    execution_id = detached.stdout.strip()
    worker = mute(env, "worker", "--grace-seconds", "5")
    assert until(f"execution {execution_id}", lambda: _finished(env, execution_id), worker) == "completed"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=TIMEOUT_S) == 0
