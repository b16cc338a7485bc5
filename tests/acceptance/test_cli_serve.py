"""``cloacina-ctl serve --watch DIR`` as a real process: picks up executions, hot-swaps, deactivates."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from cloacina_host.cli import main

pytestmark = pytest.mark.slow

SERVING = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_serving", "serving.py"
)
ctl_json, place, start_serve, stop_serve, until = (
    SERVING.ctl_json,
    SERVING.place,
    SERVING.start_serve,
    SERVING.stop_serve,
    SERVING.until,
)


def test_serve_swaps_versions_while_an_execution_runs(
    database_url: str,
    tmp_path: Path,
    reg_archives: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    home, watch = tmp_path / "home", tmp_path / "watch"
    watch.mkdir()
    monkeypatch.setenv("CLOACINA_HOME", str(home))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", database_url)
    deployed = watch / "reg-swap.cloacina"
    place(reg_archives["swap-1"], deployed)
    log = tmp_path / "serve.log"
    proc = start_serve(log, "--watch", str(watch))
    try:

        def active() -> str | None:
            packages = ctl_json(capfd, "packages", "list")["packages"]
            return packages[0]["active_version"] if packages else None

        until("serve to register 1.0.0", lambda: active() == "1.0.0", proc)
        gate, started = tmp_path / "gate", tmp_path / "started"
        first = ctl_json(
            capfd, "run", "swap_flow", "--detach", "--context", json.dumps({"gate": str(gate), "started": str(started)})
        )["execution_id"]
        until("serve to start the first execution on 1.0.0", started.exists, proc)

        place(reg_archives["swap-2"], deployed)  # the hot swap
        until("serve to activate 2.0.0", lambda: active() == "2.0.0", proc)
        second = ctl_json(capfd, "run", "swap_flow", "--detach")["execution_id"]

        def finished(execution_id: str) -> Any:
            shown = ctl_json(capfd, "executions", "show", execution_id)
            return shown if shown["status"] not in ("queued", "running") else None

        two = until("the second execution", lambda: finished(second), proc)
        assert ctl_json(capfd, "executions", "show", first)["status"] == "running"  # still held at the gate
        gate.touch()
        one = until("the first execution", lambda: finished(first), proc)
        assert (one["status"], one["package_version"], one["final_context"]["version"]) == (
            "completed",
            "1.0.0",
            "1.0.0",
        )
        assert (two["status"], two["package_version"], two["final_context"]["version"]) == (
            "completed",
            "2.0.0",
            "2.0.0",
        )

        deployed.unlink()
        until("serve to deactivate reg-swap", lambda: active() is None, proc)
        versions = ctl_json(capfd, "packages", "show", "reg-swap")["versions"]
        assert [v["version"] for v in versions] == ["1.0.0", "2.0.0"]  # deactivated, not removed
    finally:
        stop_serve(proc)
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "reg-swap.cloacina: registered reg-swap 1.0.0, active" in output
    assert "reg-swap.cloacina: registered reg-swap 2.0.0, active (was 1.0.0)" in output
    assert "reg-swap.cloacina removed: reg-swap 2.0.0 deactivated" in output
    assert f"picked up execution {first}" in output
    assert "reg-swap 1.0.0 working" in output  # the tasks' prints, from the workers, in serve's output
    assert "reg-swap 2.0.0 working" in output
    assert "Traceback" not in output


def test_serve_runs_distributed_tasks_of_a_registered_package_on_postgresql(
    postgres_schema_url: str,
    tmp_path: Path,
    reg_archives: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """`serve` shares distributed work with `cloacina-ctl worker`s: with none running, it runs it all."""
    home, watch = tmp_path / "home", tmp_path / "watch"
    watch.mkdir()
    monkeypatch.setenv("CLOACINA_HOME", str(home))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", postgres_schema_url)
    place(reg_archives["swap-2"], watch / "reg-swap.cloacina")
    log = tmp_path / "serve.log"
    proc = start_serve(log, "--watch", str(watch), "--distributed-concurrency", "2")
    try:
        until("serve to register 2.0.0", lambda: ctl_json(capfd, "packages", "list")["packages"], proc)
        execution_id = ctl_json(capfd, "run", "swap_flow", "--distributed", "--detach")["execution_id"]

        def finished() -> Any:
            shown = ctl_json(capfd, "executions", "show", execution_id)
            return shown if shown["status"] not in ("queued", "running") else None

        done = until("the distributed execution", finished, proc)
        assert (done["status"], done["package_version"], done["final_context"]["version"]) == (
            "completed",
            "2.0.0",
            "2.0.0",
        )
    finally:
        stop_serve(proc)
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "running distributed tasks (2 at once)" in output
    assert "reg-swap 2.0.0 working" in output  # the task ran here, in the package's worker process
    assert "Traceback" not in output


def test_serve_refuses_distributed_work_on_sqlite(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    status = main(["serve", "--distributed-concurrency", "2", "--database-url", f"sqlite:///{tmp_path / 'c.db'}"])
    assert status == 1
    assert "needs PostgreSQL" in capfd.readouterr().err
