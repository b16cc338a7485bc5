"""``csv_cleanup``: a linear workflow over CSV text given in the initial context."""

from __future__ import annotations

from typing import Any

import pytest
from etl_toolkit import csv_cleanup

from cloacina_workflow import Context, TaskError

CSV = """name,email,age
  ada   lovelace ,ADA@Example.org,36
grace hopper,grace@example.org,85
,nobody@example.org,20
alan turing,not-an-address,41
katherine johnson,kj@example.org,n/a
"""


def test_cleanup_end_to_end(cloacina_runner: Any) -> None:
    result = cloacina_runner.run(csv_cleanup, {"csv_text": CSV})
    assert result.ok, result.tasks
    assert list(result.tasks) == ["parse_rows", "drop_invalid", "quarantine_rejects", "normalise"]
    assert result.tasks["quarantine_rejects"].status == "skipped"  # not asked for: the branch is skipped
    assert result.tasks["quarantine_rejects"].error == (
        "skipped: condition not met: context 'quarantine' equals true (the key is absent)"
    )
    final = result.context.to_dict()
    assert final["clean_rows"] == [
        {"name": "Ada Lovelace", "email": "ada@example.org", "age": 36},
        {"name": "Grace Hopper", "email": "grace@example.org", "age": 85},
    ]
    assert final["rejected_lines"] == [4, 5, 6]
    assert final["cleanup_stats"] == {"kept": 2, "rejected": 3}
    assert final["csv_text"] == CSV  # the initial context is carried through


def test_the_quarantine_branch_runs_when_the_context_asks_for_it(cloacina_runner: Any) -> None:
    result = cloacina_runner.run(csv_cleanup, {"csv_text": CSV, "quarantine": True})
    assert result.ok, result.tasks
    assert result.tasks["quarantine_rejects"].status == "completed"
    assert result.context.get("quarantined_lines") == [4, 5, 6]


@pytest.mark.parametrize(
    ("initial", "message"),
    [
        ({}, "Missing csv_text"),
        ({"csv_text": 12}, "Missing csv_text"),
        ({"csv_text": "name,mail\nx,y\n"}, "lacks column(s): email, age"),
    ],
)
def test_bad_input_fails_the_first_task(cloacina_runner: Any, initial: dict[str, object], message: str) -> None:
    result = cloacina_runner.run(csv_cleanup, initial)
    assert result.status == "failed"
    assert result.tasks["parse_rows"].status == "failed"
    assert message in (result.tasks["parse_rows"].error or "")
    assert result.tasks["normalise"].status == "skipped"


def test_parse_rows_directly() -> None:
    context = Context({"csv_text": "name,email,age,extra\nx,x@y,1,z\n"})
    csv_cleanup.parse_rows(context)
    assert context.get("rows") == [{"name": "x", "email": "x@y", "age": "1", "extra": "z"}]


@pytest.mark.asyncio
async def test_normalise_requires_valid_rows() -> None:
    with pytest.raises(TaskError.ValidationFailed, match="Missing valid_rows"):
        await csv_cleanup.normalise(Context())
