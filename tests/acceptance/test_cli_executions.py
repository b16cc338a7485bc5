"""``cloacina-ctl executions list|show``: the stored history, as a user reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloacina_host.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    main(["run", *args, "--json"])
    return str(json.loads(capsys.readouterr().out)["execution_id"])


def test_list_filters_by_workflow_and_status(
    cli_flows: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--database-url", database_url]
    ok_id = _run(capsys, "cli_demo", *db)
    failed_id = _run(capsys, "cli_failing", *db)

    assert main(["executions", "list", "--json", *db]) == 0
    listed = json.loads(capsys.readouterr().out)["executions"]
    assert [e["id"] for e in listed] == [failed_id, ok_id]  # newest first
    assert listed[1]["workflow"] == "public::cli_pkg::cli_demo"
    assert listed[1]["status"] == "completed"
    assert listed[0]["error"] == "task 'breaks' failed: ValueError: bad thing happened"

    assert main(["executions", "list", "--json", "--workflow", "cli_demo", *db]) == 0
    assert [e["id"] for e in json.loads(capsys.readouterr().out)["executions"]] == [ok_id]
    assert main(["executions", "list", "--json", "--status", "failed", *db]) == 0
    assert [e["id"] for e in json.loads(capsys.readouterr().out)["executions"]] == [failed_id]

    assert main(["executions", "list", *db]) == 0
    table = capsys.readouterr().out
    assert ok_id in table
    assert failed_id in table
    assert "public::cli_pkg::cli_failing" in table


def test_show_gives_each_task_its_attempts_and_errors(cli_flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    execution_id = _run(capsys, "cli_failing")

    assert main(["executions", "show", execution_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "failed"
    tasks = {t["task_id"]: t for t in shown["tasks"]}
    assert [t["task_id"] for t in shown["tasks"]] == ["fine", "breaks", "never"]
    assert [a["status"] for a in tasks["breaks"]["attempts"]] == ["failed", "failed"]
    assert all(a["error"] == "ValueError: bad thing happened" for a in tasks["breaks"]["attempts"])
    assert "raise ValueError" in tasks["breaks"]["attempts"][0]["traceback"]
    assert tasks["never"]["status"] == "skipped"
    assert tasks["never"]["attempts"] == []
    assert shown["final_context"] == {"fine": True}

    assert main(["executions", "show", execution_id[:8]]) == 0  # a unique prefix is enough
    text = capsys.readouterr().out
    assert f"Execution {execution_id}" in text
    assert "breaks attempt 1 (failed" in text
    assert "breaks attempt 2 (failed" in text
    assert "ValueError: bad thing happened" in text
    assert "Traceback" not in text

    assert main(["executions", "show", execution_id, "--verbose"]) == 0
    assert "raise ValueError" in capsys.readouterr().out


def test_show_of_an_unknown_execution_exits_3(cli_flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["executions", "show", "does-not-exist"]) == 3
    err = capsys.readouterr().err
    assert "No execution 'does-not-exist'" in err
    assert "cloacina-ctl executions list" in err


def test_list_on_an_empty_database_says_so(cli_flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["executions", "list"]) == 0
    assert "No executions in sqlite:///" in capsys.readouterr().out
