"""``cloacina-ctl run`` on the durable engine, as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloacina_host.cli import main


def test_run_prints_progress_and_the_final_context(
    cli_flows: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["run", "cli_demo", "--context", '{"name": "ada"}', "--database-url", database_url])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert json.loads(out) == {"name": "ada", "greeting": "hello ada", "shout": "HELLO ADA"}
    lines = err.splitlines()
    assert "greet: running (attempt 1)" in lines
    assert any(line.startswith("greet: completed after 1 attempt(s)") for line in lines)
    assert lines.index("greet: running (attempt 1)") < lines.index("shout: running (attempt 1)")
    assert "of public::cli_pkg::cli_demo completed in" in lines[-1]


def test_run_json_gives_the_whole_result(cli_flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "cli_pkg::cli_demo", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "completed"
    assert result["workflow"] == "public::cli_pkg::cli_demo"
    assert result["context"] == {"greeting": "hello world", "shout": "HELLO WORLD"}
    assert {tid: (t["status"], t["attempts"], t["error"]) for tid, t in result["tasks"].items()} == {
        "greet": ("completed", 1, None),
        "shout": ("completed", 1, None),
    }
    assert Path(os.environ["CLOACINA_HOME"], "cloacina.db").is_file()


def test_a_failing_workflow_exits_1_and_points_at_the_details(
    cli_flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "cli_failing"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {"fine": True}
    assert "breaks: attempt 1 failed: ValueError: bad thing happened; again in 0.00 s" in err
    assert "never: skipped after 0 attempt(s)" in err
    assert "error: task 'breaks' failed: ValueError: bad thing happened. Details: cloacina-ctl executions show" in err
    assert "Traceback" not in err


def test_a_value_that_is_not_json_fails_the_task_naming_the_key(
    cli_flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "cli_not_json", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    error = result["tasks"]["store_a_set"]["error"]
    assert error.startswith("ContextError.NotSerializable: Context value for key 'tags' cannot be stored")


def test_an_unknown_workflow_exits_3_naming_the_known_ones(cli_flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no_such_flow"]) == 3
    err = capsys.readouterr().err
    assert "No workflow named 'no_such_flow'" in err
    assert "cli_pkg::cli_demo" in err


def test_invalid_context_json_exits_1_with_the_position(cli_flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "cli_demo", "--context", '{"name": }']) == 1
    err = capsys.readouterr().err
    assert "Invalid JSON in --context at line 1, column 10 (char 9)" in err


def test_an_unreachable_database_exits_2_with_the_password_masked(
    cli_flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere"
    assert main(["run", "cli_demo", "--database-url", url]) == 2
    out, err = capsys.readouterr()
    assert "postgresql://someone:***@127.0.0.1:1/nowhere" in err
    assert "s3cret-pw" not in out + err
    assert "Traceback" not in err


@pytest.mark.postgres
def test_wrong_credentials_exit_2_with_the_password_masked(
    cli_flows: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import make_url

    wrong = make_url(postgres_url).set(password="definitely-wrong").render_as_string(hide_password=False)
    assert main(["run", "cli_demo", "--database-url", wrong]) == 2
    err = capsys.readouterr().err
    assert "password authentication failed" in err
    assert "definitely-wrong" not in err
    assert ":***@" in err
    assert "Traceback" not in err


def test_a_sqlite_url_without_a_file_is_a_user_error(cli_flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "cli_demo", "--database-url", "sqlite://"]) == 1
    assert "names no SQLite file" in capsys.readouterr().err


@pytest.mark.slow
def test_the_installed_console_script_runs_a_workflow(cli_flows: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("cloacina-ctl")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cli_flows), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [str(script), "run", "cli_demo", "--context", '{"name": "bob"}', "--home", str(tmp_path / "h")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["shout"] == "HELLO BOB"
    assert (tmp_path / "h" / "cloacina.db").is_file()
