"""Task output kept per attempt and shown: ``run`` streams it to stderr, ``executions logs`` prints it.

Real ``cloacina-ctl`` processes: a plugin whose tasks print, write to ``sys.stderr`` and log, some
at once (plain tasks in threads, async ones on the loop), one that fails twice before it succeeds,
one that waits on a gate file and one that writes more than an attempt keeps; a registered package
whose tasks write in their worker process; and (PostgreSQL) a distributed worker.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cloacina_host._defaults import MAX_TASK_OUTPUT_BYTES

pytestmark = pytest.mark.slow

TIMEOUT_S = 120  # only so that a broken command fails the test instead of hanging it
T = TypeVar("T")

CHATTY_SOURCE = """
import asyncio
import logging
import sys
import time
from pathlib import Path

from cloacina_workflow import Context, task, workflow

log = logging.getLogger("chatty")
LINES = 40


def _plain(name: str) -> None:
    for i in range(LINES):
        print(f"{name} {i}")
        time.sleep(0)  # give the other writers a turn: the lines interleave, and must still be kept apart


async def _async(name: str) -> None:
    for i in range(LINES):
        print(f"{name} {i}")
        await asyncio.sleep(0)  # give the other writers a turn


@workflow(name="chatty", package="chatty_pkg", description="Tasks that write at the same time")
class chatty:
    @task
    def plain_a(ctx: Context) -> None:
        _plain("plain_a")

    @task
    def plain_b(ctx: Context) -> None:
        _plain("plain_b")

    @task
    async def async_a(ctx: Context) -> None:
        await _async("async_a")

    @task
    async def async_b(ctx: Context) -> None:
        await _async("async_b")

    @task(dependencies=["plain_a", "plain_b", "async_a", "async_b"])
    def streams(ctx: Context) -> None:
        print("streams: print")
        sys.stderr.write("streams: sys.stderr\\n")
        log.warning("streams: logging")
        ctx.set("ok", True)


@workflow(name="flaky", package="chatty_pkg")
class flaky:
    @task(retry_attempts=2, retry_delay_ms=10)
    def shaky(ctx: Context) -> None:
        marker = Path(ctx.get("marker"))
        n = int(marker.read_text()) + 1 if marker.exists() else 1
        marker.write_text(str(n))
        print(f"shaky attempt {n}")
        if n < 3:
            raise RuntimeError(f"shaky fails attempt {n}")


@workflow(name="gated", package="chatty_pkg")
class gated:
    @task
    async def wait(ctx: Context) -> None:
        print("before the gate", flush=True)
        gate = Path(ctx.get("gate"))
        deadline = time.monotonic() + 120
        while not gate.exists() and time.monotonic() < deadline:  # the test opens it once it saw the first line
            await asyncio.sleep(0.02)
        print("after the gate")


@workflow(name="huge", package="chatty_pkg")
class huge:
    @task
    def flood(ctx: Context) -> None:
        line = "x" * 1023
        for _ in range(2048):  # 2 MiB and more: over what an attempt keeps
            print(line)
"""

EXPECTED = {name: [f"{name} {i}" for i in range(40)] for name in ("plain_a", "plain_b", "async_a", "async_b")}


@pytest.fixture(scope="module")
def chatty_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("chatty-site")
    (site / "cloacina_chatty_flows.py").write_text(CHATTY_SOURCE, encoding="utf-8")
    info = site / "cloacina_chatty_flows-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cloacina-chatty-flows\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[cloacina.workflows]\n"
        "chatty = cloacina_chatty_flows:chatty\nflaky = cloacina_chatty_flows:flaky\n"
        "gated = cloacina_chatty_flows:gated\nhuge = cloacina_chatty_flows:huge\n"
    )
    return site


@pytest.fixture
def env(chatty_site: Path, tmp_path: Path) -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith("CLOACINA_")}
    found["CLOACINA_HOME"] = str(tmp_path / "home")
    found["PYTHONPATH"] = os.pathsep.join([str(chatty_site), *filter(None, [os.environ.get("PYTHONPATH")])])
    return found


def ctl_command() -> list[str]:
    return [sys.executable, "-m", "cloacina_host"]


def ctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ctl_command(), *args], capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False
    )


def until(what: str, probe: Callable[[], T | None], timeout_s: float = 60.0) -> T:
    """Wait (bounded) until ``probe()`` gives something."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = ctl(env, "run", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def logs_json(env: dict[str, str], execution_id: str, *args: str) -> dict[str, Any]:
    proc = ctl(env, "executions", "logs", execution_id, "--json", *args)
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def texts(logs: dict[str, Any], task_id: str, attempt: int = 1) -> list[str]:
    for a in logs["attempts"]:
        if (a["task_id"], a["attempt"]) == (task_id, attempt):
            return [line["text"] for line in a["output"]]
    raise AssertionError(f"no attempt {attempt} of {task_id} in {logs}")


def test_run_streams_task_output_to_stderr_and_only_the_result_to_stdout(env: dict[str, str]) -> None:
    proc = ctl(env, "run", "chatty")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"ok": True}  # nothing a task wrote is on stdout
    err = proc.stderr.splitlines()
    for line in (
        "plain_a 0",
        "async_b 39",
        "streams: print",
        "streams: sys.stderr",
        "WARNING chatty: streams: logging",
    ):
        assert line in err  # not a terminal: the lines as written, no prefix

    quiet = ctl(env, "run", "chatty", "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout) == {"ok": True}
    assert "plain_a 0" not in quiet.stderr.splitlines()
    assert "streams: logging" not in quiet.stderr
    latest = json.loads(ctl(env, "executions", "list", "--json").stdout)["executions"][0]["id"]
    assert texts(logs_json(env, latest), "plain_a") == EXPECTED["plain_a"]  # --quiet: still stored


def test_concurrent_tasks_each_keep_only_their_own_output(env: dict[str, str]) -> None:
    result = run_json(env, "chatty", "--quiet")
    logs = logs_json(env, result["execution_id"])
    for name, lines in EXPECTED.items():
        assert texts(logs, name) == lines
    streams = next(a for a in logs["attempts"] if a["task_id"] == "streams")["output"]
    assert [(line["stream"], line["level"], line["text"]) for line in streams] == [
        ("stdout", None, "streams: print"),
        ("stderr", None, "streams: sys.stderr"),
        ("log", "WARNING", "chatty: streams: logging"),
    ]

    shown = ctl(env, "executions", "show", result["execution_id"][:8])
    assert shown.returncode == 0, shown.stderr
    assert "plain_a attempt 1: 40 lines" in shown.stdout
    assert "streams attempt 1: 3 lines" in shown.stdout
    assert f"cloacina-ctl executions logs {result['execution_id']}" in shown.stdout
    detail = json.loads(ctl(env, "executions", "show", result["execution_id"], "--json").stdout)
    attempts = {t["task_id"]: t["attempts"] for t in detail["tasks"]}
    assert [line["text"] for line in attempts["async_a"][0]["output"]] == EXPECTED["async_a"]
    assert attempts["async_a"][0]["output_cut"] == 0


def test_logs_selects_tasks_and_attempts_and_names_what_exists(env: dict[str, str]) -> None:
    execution_id = run_json(env, "chatty", "--quiet")["execution_id"]
    one = ctl(env, "executions", "logs", execution_id[:8], "--task", "plain_b", "--attempt", "1")
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines() == EXPECTED["plain_b"]  # one attempt: bare lines
    task = ctl(env, "executions", "logs", execution_id, "--task", "streams")
    assert task.stdout.splitlines() == [
        "==> streams attempt 1 (completed) <==",
        "streams: print",
        "streams: sys.stderr",
        "WARNING chatty: streams: logging",
    ]
    every = ctl(env, "executions", "logs", execution_id)
    assert "==> async_b attempt 1 (completed) <==" in every.stdout.splitlines()

    no_task = ctl(env, "executions", "logs", execution_id, "--task", "nope")
    assert no_task.returncode == 3
    assert "no task 'nope'" in no_task.stderr
    assert "plain_a, plain_b, async_a, async_b, streams" in no_task.stderr
    no_attempt = ctl(env, "executions", "logs", execution_id, "--task", "streams", "--attempt", "4")
    assert no_attempt.returncode == 3
    assert "no attempt 4 (its attempts: 1)" in no_attempt.stderr
    no_execution = ctl(env, "executions", "logs", "0000dead")
    assert no_execution.returncode == 3
    assert "No execution '0000dead'" in no_execution.stderr
    assert "Traceback" not in no_task.stderr + no_attempt.stderr + no_execution.stderr


def test_retries_keep_each_attempts_output_apart(env: dict[str, str], tmp_path: Path) -> None:
    context = json.dumps({"marker": str(tmp_path / "marker")})
    execution_id = run_json(env, "flaky", "--context", context, "--quiet")["execution_id"]
    logs = logs_json(env, execution_id)
    assert [texts(logs, "shaky", n) for n in (1, 2, 3)] == [
        ["shaky attempt 1"],
        ["shaky attempt 2"],
        ["shaky attempt 3"],
    ]
    second = ctl(env, "executions", "logs", execution_id, "--task", "shaky", "--attempt", "2")
    assert second.stdout.splitlines() == ["shaky attempt 2"]
    statuses = [a["status"] for a in logs["attempts"]]
    assert statuses == ["failed", "failed", "completed"]


def test_output_over_the_cap_keeps_its_start_and_says_how_much_was_cut(env: dict[str, str]) -> None:
    proc = ctl(env, "run", "huge", "--quiet", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "x" * 1023 not in proc.stderr  # --quiet
    execution_id = json.loads(proc.stdout)["execution_id"]
    attempt = logs_json(env, execution_id)["attempts"][0]
    lines = [line["text"] for line in attempt["output"]]
    assert lines[0] == "x" * 1023
    assert 900 < len(lines) < 1024  # the first MiB of stored form, the rest counted
    kept = sum(len(text) + 1 for text in lines)  # each with its newline
    assert kept + attempt["output_cut"] == 2048 * 1024  # every byte written: kept, or counted as cut
    assert kept < MAX_TASK_OUTPUT_BYTES
    text = ctl(env, "executions", "logs", execution_id, "--task", "flood", "--attempt", "1").stdout
    assert text.splitlines()[-1] == f"({attempt['output_cut']:,} bytes of output cut: an attempt keeps its first 1 MiB)"
    shown = ctl(env, "executions", "show", execution_id).stdout
    assert f"{attempt['output_cut']:,} bytes cut" in shown


def _lines_of(proc: subprocess.Popen[str], deadline: float) -> Iterator[str]:
    """The lines ``proc`` writes to stdout, until it ends or ``deadline`` passes."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode()
    raise AssertionError("timed out reading the output of executions logs --follow")


def test_follow_shows_a_running_tasks_output_before_it_ends(env: dict[str, str], tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    run = subprocess.Popen(
        [*ctl_command(), "run", "gated", "--quiet", "--context", json.dumps({"gate": str(gate)})],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    follow: subprocess.Popen[str] | None = None
    try:

        def started() -> str | None:
            listed = ctl(env, "executions", "list", "--json")
            found = json.loads(listed.stdout)["executions"] if listed.returncode == 0 else []
            return found[0]["id"] if found else None

        execution_id = until("the execution to be stored", started)
        follow = subprocess.Popen(
            [*ctl_command(), "executions", "logs", execution_id, "--follow"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        lines = _lines_of(follow, time.monotonic() + 60)
        assert next(lines) == "[wait] before the gate"  # the task still runs: it waits for the gate
        assert run.poll() is None
        gate.touch()
        assert list(lines) == ["[wait] after the gate"]  # and --follow ends with the execution
        assert follow.wait(timeout=TIMEOUT_S) == 0
        assert run.wait(timeout=TIMEOUT_S) == 0
    finally:
        for proc in (run, follow):
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                proc.communicate(timeout=TIMEOUT_S)  # and close its pipes


def test_follow_json_gives_one_record_per_line(env: dict[str, str]) -> None:
    execution_id = run_json(env, "chatty", "--quiet")["execution_id"]
    proc = ctl(env, "executions", "logs", execution_id, "--follow", "--json", "--task", "streams")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["task_id"], r["attempt"], r["stream"], r["text"]) for r in records] == [
        ("streams", 1, "stdout", "streams: print"),
        ("streams", 1, "stderr", "streams: sys.stderr"),
        ("streams", 1, "log", "chatty: streams: logging"),
    ]


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_run_on_a_terminal_prefixes_each_line_with_its_task(env: dict[str, str]) -> None:
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*ctl_command(), "run", "chatty"], stdout=subprocess.PIPE, stderr=secondary, env=env, text=True
        )
        os.close(secondary)
        secondary = -1
        seen = b""
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the terminal's last writer has gone
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        result, _ = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0
        assert json.loads(result) == {"ok": True}  # stdout: only the result
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)
    terminal = ANSI.sub("", seen.decode(errors="replace"))
    assert "[plain_a] plain_a 0" in terminal
    assert "[async_b] async_b 39" in terminal
    assert "[streams] WARNING chatty: streams: logging" in terminal


def test_a_registered_packages_task_output_is_stored(env: dict[str, str], reg_archives: dict[str, Path]) -> None:
    registered = ctl(env, "register", str(reg_archives["logs"]))
    assert registered.returncode == 0, registered.stderr
    proc = ctl(env, "run", "reg_logs::logs_flow", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["context"] == {"talked": True, "counted": 3}
    assert "talk: to stdout" in proc.stderr.splitlines()  # shown while it ran, on stderr
    logs = logs_json(env, result["execution_id"])
    talk = next(a for a in logs["attempts"] if a["task_id"] == "talk")["output"]
    assert [(line["stream"], line["text"]) for line in talk] == [
        ("stdout", "talk: waiting for the gate"),
        ("stdout", "talk: to stdout"),
        ("stderr", "talk: to stderr"),
        ("log", "reg_logs: talk: a warning"),
    ]
    assert texts(logs, "count") == ["count: 0", "count: 1", "count: 2"]


@pytest.mark.postgres
def test_a_distributed_workers_task_output_is_stored(env: dict[str, str], postgres_schema_url: str) -> None:
    env = {**env, "CLOACINA_DATABASE_URL": postgres_schema_url}
    detached = ctl(env, "run", "chatty", "--distributed", "--detach")
    assert detached.returncode == 0, detached.stderr
    execution_id = detached.stdout.strip()
    worker = subprocess.Popen(
        [*ctl_command(), "worker", "--grace-seconds", "5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:

        def finished() -> str | None:
            shown = json.loads(ctl(env, "executions", "show", execution_id, "--json").stdout)
            status: str = shown["status"]
            return status if status not in ("running", "pending", "queued") else None

        assert until("the distributed execution", finished, timeout_s=TIMEOUT_S) == "completed"
    finally:
        worker.terminate()
        worker.communicate(timeout=TIMEOUT_S)
    logs = logs_json(env, execution_id)
    for name, lines in EXPECTED.items():
        assert texts(logs, name) == lines
    assert texts(logs, "streams") == ["streams: print", "streams: sys.stderr", "chatty: streams: logging"]
