"""kill -9 of ``cloacina-ctl worker`` processes sharing PostgreSQL, at random moments while they run
distributed executions: after each kill the ledger's invariants hold (read while the others work on),
a replacement worker joins, and every execution finishes within a deadline, each task completed once."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ._ledger import Ledger, ReadRuns
from .conftest import RECOVERY_DEADLINE_S, ROUNDS, reused

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

_workers = reused("tests.integration.scaleout.test_workers")
_submitter, _submit_mixed, _wait_done = _workers._submitter, _workers._submit_mixed, _workers._wait_done
scale_flows = reused("tests.integration.scaleout.conftest").scale_flows

#: what each shape's final context holds when every task ran once on its inputs
EXPECTED = {"pipeline": ("total", 14), "parallel": ("total", sum(range(30))), "simple": ("only", True)}


async def test_kill_9_of_workers_loses_nothing_and_reruns_nothing(
    postgres_schema_url: str,
    scale_flows: ModuleType,
    start_worker: Any,
    tmp_path: Path,
    rng: random.Random,
    events: list[str],
    read_runs: ReadRuns,
) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    options = ("--concurrency", "4", "--lease-seconds", "2")  # not --quiet: "serving tenant" says it is up
    ledger = Ledger(postgres_schema_url, out, read_runs, events=events)
    workers = [start_worker(postgres_schema_url, f"w{i}", *options) for i in range(3)]
    async with _submitter(postgres_schema_url, scale_flows) as runner:
        ids = await _submit_mixed(runner, scale_flows, out, 12 * (ROUNDS + 1), 0.2)
        ledger.note(f"submitted {len(ids)} distributed executions to 3 workers")
        deadline = time.monotonic() + 60
        while sum(read_runs(out)[0].values()) < 6:  # the workers are at work
            assert time.monotonic() < deadline, "\n".join(w.output() for w in workers)
            await asyncio.sleep(0.05)
        for i in range(ROUNDS):
            delay = rng.uniform(0.5, 3.0)
            await asyncio.sleep(delay)  # the random moment of the kill, not a wait for a condition
            victim = rng.choice([w for w in workers if w.process.poll() is None])
            victim.signal(9)
            status = await asyncio.to_thread(victim.process.wait, 30)
            ledger.note(
                f"round {i}: kill -9 worker {victim.name} (pid {victim.pid}) {delay:.2f}s later (status {status})"
            )
            await asyncio.to_thread(ledger.observe, f"kill -9 of worker {victim.name}")
            replacement = start_worker(postgres_schema_url, f"r{i}", *options)
            workers.append(replacement)
            # up before the test may stop it: a SIGTERM that lands while Python is still importing
            # kills any program by the signal's default action, before it can install its handler
            await asyncio.to_thread(replacement.wait_for, "serving tenant")
        await _wait_done(runner, list(ids), timeout=RECOVERY_DEADLINE_S)
        ledger.note("every execution finished")
    for w in workers:
        if w.process.poll() is None:
            assert w.stop() == 0, w.output()
    final = await asyncio.to_thread(ledger.observe, "the workers finished")
    runs, _ = read_runs(out)
    for eid, (key, wf) in ids.items():
        status, _, context_out = final.executions[eid]
        assert status == "completed", f"execution {eid[:8]} ({key}) ended {status}"
        name, value = EXPECTED[wf.name]
        assert json.loads(context_out or "{}").get(name) == value, f"{key}: {context_out}"
        for tid in wf.tasks:
            assert runs[(key, tid)] >= 1, f"{key} {tid} completed without running"
