"""Issue 10, class 9: the README's recipe resumes what a killed host left, followed as written.

The README (section "Running workflows durably") shows ``async with DefaultRunner() as runner:
runner.add_workflow(...)``: recovery runs when the runner starts, before the workflow is added, and
the executions it could not resume then are resumed when ``add_workflow`` adds their workflow.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from cloacina_host import DefaultRunner, WorkflowCatalog
from cloacina_host._storage._schema import executions

HOST = Path(__file__).with_name("recovery_host.py")
README = Path(__file__).resolve().parents[3] / "README.md"


def _kill_mid_execution(
    database_url: str, counters: Path, env: dict[str, str], start_committed: Callable[[str, str], bool]
) -> None:
    host = subprocess.Popen(
        [sys.executable, str(HOST), database_url, str(counters), "start"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not ((counters / "second-started").exists() and start_committed(database_url, "second")):
            if host.poll() is not None:
                pytest.fail(f"the host exited ({host.returncode}) before task 'second' started")
            if time.monotonic() > deadline:
                pytest.fail("task 'second' never started")
            time.sleep(0.02)
        host.send_signal(signal.SIGKILL)
        host.communicate(timeout=60)
    finally:
        if host.poll() is None:
            os.killpg(host.pid, signal.SIGKILL)
            host.communicate()
    assert host.returncode == -signal.SIGKILL


def test_the_readme_recipe_is_what_the_readme_host_runs() -> None:
    recipe = HOST.read_text()
    readme = README.read_text()
    for line in (
        'async with DefaultRunner() as runner:  # or DefaultRunner("postgresql://...")',
        "runner.add_workflow(",
        "result = await runner.execute(",
    ):
        assert line in readme
        assert line in recipe


@pytest.mark.slow
def test_the_readme_recipe_resumes_an_execution_its_killed_host_left(
    database_url: str, tmp_path: Path, start_committed: Callable[[str, str], bool], counter: Callable[[Path, str], int]
) -> None:
    counters = tmp_path / "counters"
    counters.mkdir()
    env = {**os.environ, "CLOACINA_HOME": str(tmp_path / "home"), "CLOACINA_DATABASE_URL": database_url}
    _kill_mid_execution(database_url, counters, env, start_committed)
    assert (counter(counters, "first"), counter(counters, "second"), counter(counters, "third")) == (1, 1, 0)

    readme = subprocess.run(
        [sys.executable, str(HOST), database_url, str(counters), "readme"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert readme.returncode == 0, readme.stderr
    new = json.loads(readme.stdout)
    assert new["status"] == "completed"

    async def stored() -> list[tuple[str, str, str, list[tuple[int, str]]]]:
        async with DefaultRunner(database_url, catalog=WorkflowCatalog(), recover=False) as runner:
            with runner.database.read("listing executions") as conn:
                ids = [str(r[0]) for r in conn.execute(select(executions.c.id))]
            rows = []
            for execution_id in ids:
                record = await runner.get_execution(execution_id)
                for t in record.tasks:
                    rows.append((record.id, record.status, t.task_id, [(a.attempt, a.status) for a in t.attempts]))
        return rows

    rows = asyncio.run(stored())
    interrupted = {tid: attempts for eid, status, tid, attempts in rows if eid != new["execution_id"]}
    statuses = {status for eid, status, _tid, _attempts in rows}
    assert statuses == {"completed"}  # the interrupted execution was resumed and finished, as was the new one
    assert interrupted == {
        "first": [(1, "completed")],  # completed before the kill: never ran again
        "second": [(1, "interrupted"), (2, "completed")],
        "third": [(1, "completed")],
    }
    # two executions: 'first' ran once for each, 'second' once more for the interrupted attempt
    assert (counter(counters, "first"), counter(counters, "second"), counter(counters, "third")) == (2, 3, 2)
