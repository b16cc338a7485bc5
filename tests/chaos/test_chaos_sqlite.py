"""kill -9 of ``cloacina-ctl run``, ``serve`` and ``register`` on SQLite at random moments; after each
kill the ledger's invariants hold, and a ``serve`` then finishes every execution within a deadline."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy.exc

from ._ledger import Ledger, ReadRuns, snapshot
from .conftest import CTL, RECOVERY_DEADLINE_S, ROOT, ROUNDS, Processes, reused

pytestmark = pytest.mark.slow

SHAPES = ("pipeline", "parallel", "simple")
#: what each shape's final context holds when every task ran once on its inputs
EXPECTED = {"pipeline": ("total", 14), "parallel": ("total", sum(range(30))), "simple": ("only", True)}


def _env(home: Path, site: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "CLOACINA_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("CLOACINA_DATABASE_URL", None)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return env


def _finished_all(url: str, ledger: Ledger) -> bool:
    return all(status != "running" for status, _, _ in snapshot(url).executions.values())


def _stored(url: str, key: str) -> bool:
    try:
        executions = snapshot(url).executions
    except sqlalchemy.exc.OperationalError:  # `run` has not made its tables yet
        return False
    return any(stored_key == key for _, stored_key, _ in executions.values())


def _wait(what: str, check: object, proc: subprocess.Popen[bytes], log: Path, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():  # type: ignore[operator]
        if proc.poll() is not None:
            pytest.fail(f"{what}: the process exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not done within {deadline_s:g}s:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def test_kill_9_of_run_and_serve_loses_nothing_and_reruns_nothing(
    scale_site: Path, tmp_path: Path, rng: random.Random, events: list[str], processes: Processes, read_runs: ReadRuns
) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    url = f"sqlite:///{tmp_path / 'chaos.db'}"
    env = _env(tmp_path / "home", scale_site)
    ledger = Ledger(url, out, read_runs, events=events)
    shapes: dict[str, str] = {}

    # the runner: each round starts an execution in `cloacina-ctl run` and kills it at a random moment
    for i in range(ROUNDS):
        shape, key = SHAPES[i % len(SHAPES)], f"run{i}"
        shapes[key] = shape
        context = {"key": key, "out_dir": str(out), "sleep_s": round(rng.uniform(0.3, 1.5), 3)}
        log = tmp_path / f"run-{i}.log"
        argv = [str(CTL), "run", f"scale::{shape}", "--database-url", url, "--context", json.dumps(context), "--json"]
        proc = processes.start(argv, env, log)
        # the kill lands after the execution is stored (a run killed while Python still imports has
        # nothing to lose): at a random moment of its tasks
        _wait(f"run #{i} storing its execution", functools.partial(_stored, url, key), proc, log, 60)
        delay = rng.uniform(0.0, 2.5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(delay)
        before = processes.kill9(proc)
        ledger.note(
            f"round {i}: kill -9 `run scale::{shape}` {delay:.2f}s after it stored its execution ({_fate(before)})"
        )
        ledger.observe(f"kill -9 of run #{i}")

    # serve: resumes what the dead runners left; killed at random moments too, then left to finish
    for i in range(ROUNDS + 1):
        if i < ROUNDS:  # and new work for it, stored by `run --detach`
            shape, key = SHAPES[i % len(SHAPES)], f"detached{i}"
            shapes[key] = shape
            context = {"key": key, "out_dir": str(out), "sleep_s": round(rng.uniform(0.3, 1.5), 3)}
            argv = [str(CTL), "run", f"scale::{shape}", "--database-url", url, "--detach"]
            stored = subprocess.run(
                [*argv, "--context", json.dumps(context)], env=env, capture_output=True, timeout=60, check=False
            )
            assert stored.returncode == 0, stored.stderr
        log = tmp_path / f"serve-{i}.log"
        proc = processes.start([str(CTL), "serve", "--interval", "0.2", "--database-url", url], env, log)
        if i == ROUNDS:
            _wait("serve starting", functools.partial(_logged, log, "serving tenant"), proc, log, 60)
            _wait("serve finishing every execution", lambda: _finished_all(url, ledger), proc, log, RECOVERY_DEADLINE_S)
            proc.terminate()
            assert proc.wait(30) == 0, log.read_text(errors="replace")
            ledger.note(f"serve #{i} finished every execution and stopped on SIGTERM")
            break
        delay = rng.uniform(1.0, 5.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(delay)
        before = processes.kill9(proc)
        assert before is None, f"serve exited by itself ({before}):\n{log.read_text(errors='replace')}"
        ledger.note(f"serve round {i}: kill -9 `serve` after {delay:.2f}s")
        ledger.observe(f"kill -9 of serve #{i}")

    final = ledger.observe("the last serve")
    runs, _ = read_runs(out)
    for eid, (status, key, context_out) in final.executions.items():
        assert status == "completed", f"execution {eid[:8]} ({key}) ended {status}"
        name, value = EXPECTED[shapes[key]]
        assert json.loads(context_out or "{}").get(name) == value, f"{key}: {context_out}"
    for (eid, tid), _row in final.tasks.items():
        key = final.executions[eid][1]
        assert runs[(key, tid)] >= 1, f"{key} {tid} completed without running"
    assert {final.executions[e][1] for e in final.executions} == set(shapes)


def test_kill_9_of_register_leaves_a_registry_the_next_register_completes(
    tmp_path: Path, rng: random.Random, events: list[str], processes: Processes
) -> None:
    """A register killed anywhere leaves the database intact and nothing half-installed for good: the next
    register succeeds, the package is active and whole, and no ``.installing-*`` staging is left."""
    demo = _demo_archive(tmp_path)
    for i in range(ROUNDS):
        home = tmp_path / f"home-{i}"
        url = f"sqlite:///{home / 'registry.db'}"
        home.mkdir()
        env = _env(home)
        log = tmp_path / f"register-{i}.log"
        proc = processes.start([str(CTL), "register", str(demo), "--database-url", url], env, log)
        started = time.monotonic()
        if i % 2:  # any moment
            delay = rng.uniform(0.5, 4.0)
            moment = f"{delay:.2f}s after its start"
        else:  # while it installs: when its staging directory appears, plus a random fraction of a second
            delay = _staging_appears(home / "packages", proc, started) + rng.uniform(0.0, 0.01)
            moment = f"{delay:.2f}s after its start (installing)"
        before = _kill_at(proc, delay, started, processes)
        staged = sorted(p.name for p in (home / "packages").glob(".installing-*"))
        events.append(f"round {i}: kill -9 `register` {moment} ({_fate(before)}; staging left: {staged or 'none'})")
        if (home / "registry.db").exists():
            integrity = snapshot(url).integrity if _has_schema(url) else "ok"
            assert integrity == "ok", f"round {i}: PRAGMA integrity_check: {integrity}"
        again = subprocess.run(
            [str(CTL), "register", str(demo), "--database-url", url, "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert again.returncode == 0, f"round {i}: the next register failed:\n{again.stderr}"
        listed = subprocess.run(
            [str(CTL), "packages", "list", "--database-url", url, "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        [package] = json.loads(listed.stdout)["packages"]
        assert package["active_version"] == "1.0.0", package
        leftovers = sorted(p.name for p in (home / "packages").glob(".installing-*"))
        assert not leftovers, f"round {i}: staging directories left after the next register: {leftovers}"
        events.append(f"round {i}: the next register succeeded; registry whole, no staging left")


def _logged(log: Path, text: str) -> bool:
    return text in log.read_text(errors="replace")


def _fate(status: int | None) -> str:
    return "killed" if status is None else f"it had exited with {status}"


def _kill_at(proc: subprocess.Popen[bytes], delay: float, started: float, processes: Processes) -> int | None:
    """kill -9 ``proc`` ``delay`` seconds after it started (at once if that is past); its status if it had exited."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(max(0.0, delay - (time.monotonic() - started)))
    return processes.kill9(proc)


def _staging_appears(where: Path, proc: subprocess.Popen[bytes], started: float) -> float:
    """Seconds from ``proc``'s start until an ``.installing-*`` directory appears in ``where`` (or it exits)."""
    deadline = time.monotonic() + 60
    while not any(where.glob(".installing-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # polling a condition, with a deadline
    return time.monotonic() - started


def _has_schema(url: str) -> bool:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        return "executions" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _demo_archive(tmp_path: Path) -> Path:
    """The tutorial's simple-packaged-demo as an archive (the registry tests' builder, cached)."""
    load_helper = reused("tests.conftest").load_helper
    builder = load_helper("cloacina_tests_reg_archives", "reg-archives/archives.py")
    cache = ROOT / ".pytest_cache" / "d" / "cloacina-reg-archives"
    return builder.archive(cache, "demo", ROOT / "plugins" / "simple-packaged-demo")  # type: ignore[no-any-return]
