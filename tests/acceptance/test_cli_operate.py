"""Operating executions from the command line: cancel (wherever it runs), Ctrl-C in ``run``, retry,
rerun, watch, and queued executions. Real ``cloacina-ctl`` processes sharing one database.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TIMEOUT_S = 120  # only so that a broken command fails the test instead of hanging it

FLOWS_SOURCE = """
import asyncio
import time
from pathlib import Path

from cloacina_workflow import Context, TaskError, task, workflow


@workflow(name="slow", package="ops_pkg", description="A task that waits for a file, then one after it")
class slow:
    @task
    async def wait_async(ctx: Context) -> None:
        Path(ctx.get("dir"), "started").touch()
        deadline = time.monotonic() + 120
        while not Path(ctx.get("dir"), "go").exists() and time.monotonic() < deadline:  # or until cancelled
            await asyncio.sleep(0.02)
        ctx.set("waited", True)

    @task(dependencies=["wait_async"])
    def after(ctx: Context) -> None:
        Path(ctx.get("dir"), "after-ran").touch()
        ctx.set("after", True)


@workflow(name="flaky", package="ops_pkg", description="b fails until a flag file exists")
class flaky:
    @task
    def a(ctx: Context) -> None:
        runs = Path(ctx.get("dir"), "a-runs")
        runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
        ctx.set("a", 1)

    @task(dependencies=["a"])
    def b(ctx: Context) -> None:
        if not Path(ctx.get("dir"), "fixed").exists():
            raise TaskError.ExecutionFailed("not fixed yet")
        ctx.set("b", ctx.get("a") + 1)

    @task(dependencies=["b"])
    def c(ctx: Context) -> None:
        ctx.set("c", ctx.get("b") + 1)
"""


@pytest.fixture(scope="module")
def ops_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("ops-site")
    (site / "cloacina_ops_flows.py").write_text(FLOWS_SOURCE, encoding="utf-8")
    info = site / "cloacina_ops_flows-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cloacina-ops-flows\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[cloacina.workflows]\nslow = cloacina_ops_flows:slow\nflaky = cloacina_ops_flows:flaky\n"
    )
    return site


@pytest.fixture
def env(ops_site: Path, tmp_path: Path) -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith("CLOACINA_")}
    found["CLOACINA_HOME"] = str(tmp_path / "home")
    found["PYTHONPATH"] = os.pathsep.join([str(ops_site), *filter(None, [os.environ.get("PYTHONPATH")])])
    return found


def _ctl_path() -> str:
    ctl = shutil.which("cloacina-ctl", path=str(Path(sys.executable).parent))
    assert ctl is not None
    return ctl


def ctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_ctl_path(), *args], capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False)


def show(env: dict[str, str], execution_id: str) -> dict[str, Any]:
    proc = ctl(env, "executions", "show", execution_id, "--json")
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def only_execution(env: dict[str, str]) -> str | None:
    proc = ctl(env, "executions", "list", "--json")
    found = json.loads(proc.stdout)["executions"] if proc.returncode == 0 else []
    return str(found[0]["id"]) if found else None


def until(what: str, check: Callable[[], Any], proc: subprocess.Popen[str] | None = None) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process exited with {proc.returncode} while waiting for {what}")
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")


@pytest.fixture
def start() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a long-running ``cloacina-ctl`` command (stdout captured, stderr to ``err``); killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def run(env: dict[str, str], *args: str, err: Path | None = None) -> subprocess.Popen[str]:
        stderr = subprocess.PIPE if err is None else err.open("w")
        proc = subprocess.Popen(
            [_ctl_path(), *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        if err is not None:
            stderr.close()
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=TIMEOUT_S)


def _tasks(shown: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {t["task_id"]: (t["status"], len(t["attempts"])) for t in shown["tasks"]}


def test_cancel_from_another_process_stops_a_run_and_its_pending_tasks_never_start(
    env: dict[str, str], tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    run = start(env, "run", "slow", "--context", json.dumps({"dir": str(tmp_path)}))
    until("the slow task to start", (tmp_path / "started").exists, run)
    execution_id = until("the execution to be listed", lambda: only_execution(env), run)
    cancelled = ctl(env, "executions", "cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "stops it at its next lease renewal" in cancelled.stderr
    _out, err = run.communicate(timeout=TIMEOUT_S)
    assert run.returncode == 1, err
    assert f"execution {execution_id} of public::ops_pkg::slow cancelled" in err
    shown = show(env, execution_id)
    assert shown["status"] == "cancelled"
    assert _tasks(shown) == {"wait_async": ("cancelled", 1), "after": ("cancelled", 0)}
    assert not (tmp_path / "after-ran").exists()
    actor = shown["events"][0]
    assert (actor["kind"], actor["actor"].partition("@")[2]) == ("cancel", os.uname().nodename)
    # cancelling it again: it has ended
    again = ctl(env, "executions", "cancel", execution_id)
    assert again.returncode == 1
    assert f"Execution {execution_id} already ended with status cancelled" in again.stderr
    assert ctl(env, "executions", "cancel", "no-such-id").returncode == 3


def test_ctrl_c_in_a_non_interactive_run_cancels_the_execution(
    env: dict[str, str], tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    run = start(env, "run", "slow", "--context", json.dumps({"dir": str(tmp_path)}))
    until("the slow task to start", (tmp_path / "started").exists, run)
    execution_id = until("the execution to be listed", lambda: only_execution(env), run)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=TIMEOUT_S)
    assert run.returncode == 130, err
    assert f"interrupted: execution {execution_id} was cancelled (it ended cancelled)" in err
    assert out == ""
    shown = show(env, execution_id)
    assert shown["status"] == "cancelled"
    assert _tasks(shown)["after"] == ("cancelled", 0)


def test_a_queued_execution_is_cancelled_by_the_command_itself_and_list_shows_queued(
    env: dict[str, str], tmp_path: Path
) -> None:
    detached = ctl(env, "run", "slow", "--detach", "--context", json.dumps({"dir": str(tmp_path)}))
    assert detached.returncode == 0, detached.stderr
    execution_id = detached.stdout.strip()
    queued = ctl(env, "executions", "list", "--status", "queued", "--json")
    assert [e["id"] for e in json.loads(queued.stdout)["executions"]] == [execution_id]
    assert json.loads(ctl(env, "executions", "list", "--status", "running", "--json").stdout)["executions"] == []
    listed = ctl(env, "executions", "list")
    assert "queued" in listed.stdout
    bad = ctl(env, "executions", "list", "--status", "sleeping")
    assert bad.returncode == 1
    assert "'sleeping' is not one of 'queued', 'running', 'completed', 'failed', 'cancelled'" in bad.stderr
    cancelled = ctl(env, "executions", "cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"execution {execution_id} of public::ops_pkg::slow cancelled" in cancelled.stderr
    shown = show(env, execution_id)
    assert (shown["status"], shown["started_at"]) == ("cancelled", None)  # no host ever started it
    assert _tasks(shown) == {"wait_async": ("cancelled", 0), "after": ("cancelled", 0)}


def test_serve_stops_a_detached_execution_it_runs_when_cancelled_and_watch_follows_it(
    env: dict[str, str], tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    detached = ctl(env, "run", "slow", "--detach", "--context", json.dumps({"dir": str(tmp_path)}))
    execution_id = detached.stdout.strip()
    watched = tmp_path / "watch.err"
    watch = start(env, "executions", "watch", execution_id, err=watched)
    until("watch to show it queued", lambda: ": queued" in watched.read_text(), watch)
    serve = start(env, "serve", "--interval", "0.2")
    until("serve to start the slow task", (tmp_path / "started").exists, serve)
    assert show(env, execution_id)["status"] != "queued"
    cancelled = ctl(env, "executions", "cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    until("serve to cancel it", lambda: show(env, execution_id)["status"] == "cancelled", serve)
    out, _ = watch.communicate(timeout=TIMEOUT_S)
    err = watched.read_text()
    assert watch.returncode == 1, err
    lines = err.splitlines()
    assert lines[0] == f"execution {execution_id} of public::ops_pkg::slow: queued"
    assert "wait_async: running (attempt 1)" in lines
    assert any(line.startswith("wait_async: cancelled (attempt 1) — cancelled: the execution was") for line in lines)
    assert f"execution {execution_id} of public::ops_pkg::slow cancelled" in err
    assert json.loads(out) == {"dir": str(tmp_path)}
    assert not (tmp_path / "after-ran").exists()


def test_watch_follows_a_detached_execution_to_its_end_and_ctrl_c_leaves_it_running(
    env: dict[str, str], tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    detached = ctl(env, "run", "slow", "--detach", "--context", json.dumps({"dir": str(tmp_path)}))
    execution_id = detached.stdout.strip()
    first, second = tmp_path / "first.err", tmp_path / "second.err"
    stopped = start(env, "executions", "watch", execution_id, err=first)
    watch = start(env, "executions", "watch", execution_id, err=second)
    until("watch to show it queued", lambda: ": queued" in first.read_text(), stopped)
    serve = start(env, "serve", "--interval", "0.2")
    until("serve to start the slow task", (tmp_path / "started").exists, serve)
    until("watch to show it running", lambda: "wait_async: running" in first.read_text(), stopped)
    stopped.send_signal(signal.SIGINT)
    stopped.communicate(timeout=TIMEOUT_S)
    assert stopped.returncode == 0, first.read_text()
    assert f"stopped watching; execution {execution_id} goes on" in first.read_text()
    (tmp_path / "go").touch()
    out, _ = watch.communicate(timeout=TIMEOUT_S)
    assert watch.returncode == 0, second.read_text()
    assert "after: completed (attempt 1)" in second.read_text().splitlines()
    assert json.loads(out) == {"dir": str(tmp_path), "waited": True, "after": True}


def test_retry_runs_only_the_failed_and_skipped_tasks_and_rerun_starts_a_new_execution(
    env: dict[str, str], tmp_path: Path
) -> None:
    failed = ctl(env, "run", "flaky", "--context", json.dumps({"dir": str(tmp_path)}))
    assert failed.returncode == 1
    execution_id = only_execution(env)
    assert execution_id is not None
    assert _tasks(show(env, execution_id)) == {"a": ("completed", 1), "b": ("failed", 1), "c": ("skipped", 0)}
    running = ctl(env, "executions", "retry", "no-such-id")
    assert running.returncode == 3
    (tmp_path / "fixed").touch()
    retried = ctl(env, "executions", "retry", execution_id)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout) == {"dir": str(tmp_path), "a": 1, "b": 2, "c": 3}
    assert (tmp_path / "a-runs").read_text() == "x"  # the completed task kept its output and never ran again
    shown = show(env, execution_id)
    assert shown["status"] == "completed"
    attempts = {t["task_id"]: [(a["attempt"], a["status"]) for a in t["attempts"]] for t in shown["tasks"]}
    assert attempts == {"a": [(1, "completed")], "b": [(1, "failed"), (2, "completed")], "c": [(1, "completed")]}
    [event] = shown["events"]
    assert (event["kind"], event["detail"]["tasks"], event["detail"]["was"]) == ("retry", ["b", "c"], "failed")
    # a finished, completed execution has nothing to retry; a new one with the same input does
    nothing = ctl(env, "executions", "retry", execution_id)
    assert nothing.returncode == 1
    assert "nothing to retry" in nothing.stderr
    rerun = ctl(env, "executions", "rerun", execution_id, "--json")
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["execution_id"] != execution_id
    assert result["status"] == "completed"
    new = show(env, result["execution_id"])
    assert (new["rerun_of"], new["context"]) == (execution_id, {"dir": str(tmp_path)})
    assert [(e["kind"], e["detail"]["execution_id"]) for e in show(env, execution_id)["events"][1:]] == [
        ("rerun", result["execution_id"])
    ]
    assert "rerun by " in ctl(env, "executions", "show", execution_id).stdout


def _worker_pids(home: Path) -> set[int]:
    """The package worker processes started under ``home`` (``_worker_main.py PACKAGE_DIR``)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"_worker_main.py") for part in cmdline) and str(home).encode() in b" ".join(cmdline):
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds worker processes through /proc")
def test_cancelling_a_registered_packages_task_ends_its_worker_and_retry_latest_runs_the_new_version(
    env: dict[str, str], tmp_path: Path, reg_archives: dict[str, Path], start: Callable[..., subprocess.Popen[str]]
) -> None:
    home = Path(env["CLOACINA_HOME"])
    assert ctl(env, "register", str(reg_archives["swap-1"])).returncode == 0
    gate, started = tmp_path / "gate", tmp_path / "started"
    context = json.dumps({"gate": str(gate), "started": str(started)})
    run = start(env, "run", "swap_flow", "--context", context)
    until("the package's task to start", started.exists, run)
    [worker] = _worker_pids(home)
    execution_id = until("the execution to be listed", lambda: only_execution(env), run)
    assert ctl(env, "executions", "cancel", execution_id).returncode == 0
    _out, err = run.communicate(timeout=TIMEOUT_S)
    assert run.returncode == 1, err
    assert not _alive(worker)
    assert _tasks(show(env, execution_id)) == {"work": ("cancelled", 1), "finish": ("cancelled", 0)}
    assert ctl(env, "register", str(reg_archives["swap-2"])).returncode == 0
    gate.touch()
    retried = ctl(env, "executions", "retry", execution_id, "--latest", "--json")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["context"]["version"] == "2.0.0"
    shown = show(env, execution_id)
    assert shown["package_version"] == "2.0.0"
    assert [(e["kind"], e["detail"].get("version")) for e in shown["events"]] == [("cancel", None), ("retry", "2.0.0")]
    assert _tasks(shown) == {"work": ("completed", 2), "finish": ("completed", 1)}


@pytest.mark.postgres
def test_distributed_workers_stop_a_cancelled_execution_at_their_next_lease_renewal(
    env: dict[str, str], tmp_path: Path, postgres_schema_url: str, start: Callable[..., subprocess.Popen[str]]
) -> None:
    env = {**env, "CLOACINA_DATABASE_URL": postgres_schema_url}
    detached = ctl(env, "run", "slow", "--distributed", "--detach", "--context", json.dumps({"dir": str(tmp_path)}))
    assert detached.returncode == 0, detached.stderr
    execution_id = detached.stdout.strip()
    assert show(env, execution_id)["status"] == "queued"
    logged = tmp_path / "worker.err"
    worker = start(env, "worker", "--lease-seconds", "1.5", "--grace-seconds", "1", err=logged)
    until("a worker to start the slow task", (tmp_path / "started").exists, worker)
    assert show(env, execution_id)["status"] == "running"
    cancelled = ctl(env, "executions", "cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"execution {execution_id} of public::ops_pkg::slow cancelled" in cancelled.stderr
    assert _tasks(show(env, execution_id)) == {"wait_async": ("cancelled", 1), "after": ("cancelled", 0)}
    # the worker running the task sees it at its next lease renewal and stops the task
    seen = f"execution {execution_id[:8]} was cancelled: stopping public::ops_pkg::slow wait_async"
    until("the worker to stop the task", lambda: seen in logged.read_text(), worker)
    worker.send_signal(signal.SIGTERM)
    worker.communicate(timeout=TIMEOUT_S)
    assert worker.returncode == 0, logged.read_text()
    assert not (tmp_path / "after-ran").exists()
    assert _tasks(show(env, execution_id)) == {"wait_async": ("cancelled", 1), "after": ("cancelled", 0)}
