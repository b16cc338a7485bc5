"""Conditional tasks and typed inputs end to end: ``inspect`` shows them, ``run`` honours and refuses.

The package is ``tests/packages/typed-flow`` (``reg_archives["typed"]``): its workflow's input is a pydantic
model, and one task runs only when the context's ``mode`` is ``"full"``. Registered, its model lives in
the package's worker process: the host asks there, so the refusal is the model's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloacina_host._storage import _queries as q
from cloacina_host._storage import open_database


def _executions(database_url: str) -> int:
    db = open_database(database_url)
    try:
        with db.read("counting executions") as conn:
            return len(q.list_executions(conn, tenant="public", limit=1000))
    finally:
        db.dispose()


def test_inspect_shows_conditions_and_the_input_schema(ctl: Any, reg_archives: dict[str, Path]) -> None:
    status, out, err = ctl("inspect", str(reg_archives["typed"]))
    assert status == 0, err
    assert "Input        NightlyInput {day: date, mode: string (optional)}; JSON Schema: {" in out
    assert "full_report" in out
    assert "if context 'mode' equals \"full\"" in out
    assert "runs when every dependency ended, however" in out
    status, out, err = ctl("inspect", str(reg_archives["typed"]), "--graph", "mermaid")
    assert status == 0, err
    assert "[\"full_report (if context 'mode' equals #quot;full#quot;)\"]" in out
    status, out, err = ctl("inspect", str(reg_archives["typed"]), "--graph", "dot")
    assert status == 0, err
    assert '[label="publish (runs when every dependency ended, however)"]' in out
    status, out, err = ctl("inspect", str(reg_archives["typed"]), "--json")
    assert status == 0, err
    [wf] = json.loads(out)["workflows"]
    assert wf["input_schema"]["required"] == ["day"]
    tasks = {t["id"]: t for t in wf["tasks"]}
    assert tasks["full_report"]["when"] == [{"key": "mode", "op": "equals", "value": "full"}]
    assert tasks["publish"]["trigger_rule"] == "all_done"
    assert tasks["collect"]["trigger_rule"] == "all_succeeded"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ('{"day": "x"}', "input of nightly_report: 'day': Input should be a valid date or datetime"),
        ('{"day": "2024-05-01", "mode": "weekly"}', "'mode': Input should be 'quick' or 'full' (got \"weekly\")"),
        ("{}", "input of nightly_report: 'day': Field required. Give a context that fits its input model"),
        # what only the model knows (a validator): checked in the package's worker, where the model lives
        ('{"day": "2999-01-01"}', "'day': Value error, the day is too far in the future"),
    ],
)
def test_run_of_a_registered_package_with_a_bad_input_exits_1_and_stores_nothing(
    ctl: Any, reg_archives: dict[str, Path], database_url: str, context: str, message: str
) -> None:
    assert ctl("register", str(reg_archives["typed"]))[0] == 0
    status, _out, err = ctl("run", "typed_flow::nightly_report", "--context", context)
    assert status == 1, err
    assert message in err
    assert "Traceback" not in err
    assert _executions(database_url) == 0


def test_run_with_a_good_input_skips_the_branch_its_condition_rules_out(
    ctl: Any, reg_archives: dict[str, Path]
) -> None:
    assert ctl("register", str(reg_archives["typed"]))[0] == 0
    status, out, err = ctl("run", "typed_flow::nightly_report", "--context", '{"day": "2024-05-01"}', "--json")
    assert status == 0, err
    shown = json.loads(out)
    status, out, err = ctl("executions", "show", shown["execution_id"], "--json")
    assert status == 0, err
    tasks = {t["task_id"]: (t["status"], t["error"]) for t in json.loads(out)["tasks"]}
    assert tasks == {
        "collect": ("completed", None),
        "full_report": ("skipped", "skipped: condition not met: context 'mode' equals \"full\" (the key is absent)"),
        "publish": ("completed", None),  # all_done: it runs after a skipped dependency
    }
    status, out, err = ctl(
        "run", "typed_flow::nightly_report", "--context", '{"day": "2024-05-01", "mode": "full"}', "--json"
    )
    assert status == 0, err
    assert json.loads(out)["context"]["full"] is True
