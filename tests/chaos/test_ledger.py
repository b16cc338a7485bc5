"""The ledger's checks themselves: each violation it exists to catch is caught (on made-up snapshots)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._ledger import Ledger, ReadRuns, Snapshot, TaskRow, row_problems


def _snap(status: str, output: str | None, attempts: tuple[tuple[int, str], ...], integrity: str = "ok") -> Snapshot:
    task = TaskRow(status, attempts[-1][0] if attempts else 0, output, attempts)
    return Snapshot({"e1": ("running", "k1", None)}, {("e1", "a"): task}, integrity)


def _run(out: Path) -> None:
    with (out / "runs-1.log").open("a") as f:
        f.write("k1 a 1\n")


def test_a_completed_task_that_runs_again_is_caught(tmp_path: Path, read_runs: ReadRuns) -> None:
    ledger = Ledger("sqlite://", tmp_path, read_runs)
    _run(tmp_path)
    ledger.observe("first", _snap("completed", '{"x": 1}', ((1, "completed"),)))
    ledger.observe("nothing new", _snap("completed", '{"x": 1}', ((1, "completed"),)))
    _run(tmp_path)
    with pytest.raises(AssertionError, match="ran again after its completion was committed"):
        ledger.observe("a second run", _snap("completed", '{"x": 1}', ((1, "completed"),)))


def test_a_lost_or_changed_result_is_caught(tmp_path: Path, read_runs: ReadRuns) -> None:
    ledger = Ledger("sqlite://", tmp_path, read_runs)
    _run(tmp_path)
    ledger.observe("first", _snap("completed", '{"x": 1}', ((1, "completed"),)))
    with pytest.raises(AssertionError, match="was completed and is now running"):
        ledger.observe("lost", _snap("running", None, ((1, "completed"), (2, "running"))))
    with pytest.raises(AssertionError, match="committed output changed"):
        ledger.observe("changed", _snap("completed", '{"x": 2}', ((1, "completed"),)))


def test_inconsistent_rows_are_caught() -> None:
    assert row_problems(_snap("completed", "{}", ((1, "completed"),))) == []
    assert row_problems(_snap("running", None, ((1, "interrupted"), (2, "running")))) == []
    assert row_problems(_snap("running", None, ((1, "running"), (2, "running"))))  # two at once
    assert row_problems(_snap("completed", "{}", ((1, "completed"), (2, "completed"))))  # completed twice
    assert row_problems(_snap("completed", "{}", ((1, "completed"), (2, "interrupted"))))  # not the latest
    assert row_problems(_snap("running", None, ((1, "running"),), integrity="*** page 3 is never used"))
    done = Snapshot({"e1": ("completed", "k1", "{}")}, {("e1", "a"): TaskRow("ready", 0, None, ())}, "ok")
    assert row_problems(done) == ["execution e1 completed with tasks ['a'] not completed"]
