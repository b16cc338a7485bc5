"""The CLI's shared behaviour, as a user meets it: help, version, exit statuses, bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cloacina_host import __version__
from cloacina_host.cli import main


def test_help_documents_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Exit status: 0 success, 1 user error" in out
    assert "3 not found" in out
    for command in ("run", "workflows"):
        assert command in out


def test_help_lists_each_commands_own_summary_without_importing_the_commands() -> None:
    import click

    from cloacina_host.cli import COMMANDS, cli

    ctx = click.Context(cli)
    for name, (_target, summary) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        for limit in (30, 45, 200):  # the listing's width decides where a summary is cut
            listed = click.Command(name, help=summary).get_short_help_str(limit)
            assert listed == command.get_short_help_str(limit), name
    script = (
        "import sys\n"
        "from cloacina_host.cli import main\n"
        "status = main(['--help'])\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('cloacina_host._engine', 'cloacina_host.cli._'))"
        " and m not in ('cloacina_host.cli._common', 'cloacina_host.cli._streams'))\n"
        "print(status, loaded, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    status, loaded = done.stderr.strip().splitlines()[-1].split(" ", 1)
    assert status == "0"
    assert loaded == "[]"  # `--help` is quick: no command's module, no engine, no database driver
    assert "workflows        Workflows the host can run." in done.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 1
    assert "No such command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("context", "fragment"),
    [
        ('{"a": }', "line 1, column 7 (char 6)"),
        ("[1, 2]", "must be a JSON object"),
        ('{"a": 1,\n "b": oops}', "line 2, column 7"),
    ],
)
def test_invalid_context_json_exits_1_with_the_position(
    context: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "anything", "--context", context]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert fragment in err
    assert "Traceback" not in err


def test_context_file_that_is_missing_or_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "anything", "--context", f"@{tmp_path / 'nope.json'}"]) == 1
    assert "Cannot read context file" in capsys.readouterr().err
    bad = tmp_path / "ctx.json"
    bad.write_text('{"x": tru}')
    assert main(["run", "anything", "--context", f"@{bad}"]) == 1
    assert f"Invalid JSON in {bad} at line 1, column 7" in capsys.readouterr().err


def test_console_script_and_module_entry_work_as_installed() -> None:
    script = Path(sys.executable).with_name("cloacina-ctl")
    for argv in ([str(script), "--help"], [sys.executable, "-m", "cloacina_host", "--help"]):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "Usage: cloacina-ctl" in proc.stdout
