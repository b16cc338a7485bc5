"""Issue 10, class 2 (CLI): `run --context` over a limit, or from what is not a regular file, is refused.

One message naming the limit, exit 1, no traceback, nothing stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloacina_host.cli import main
from cloacina_workflow.limits import MAX_CONTEXT_BYTES, MAX_JSON_DEPTH


def executions(capsys: pytest.CaptureFixture[str]) -> list[object]:
    capsys.readouterr()
    assert main(["executions", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    return list(listed["executions"] if isinstance(listed, dict) else listed)


def refused(capsys: pytest.CaptureFixture[str], context: str) -> str:
    assert main(["run", "cli_demo", "--context", context]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    return err


def test_a_context_over_the_size_limit_is_refused_before_anything_is_stored(
    cli_flows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = json.dumps({"blob": "x" * (70 * 1024 * 1024)})
    err = refused(capsys, big)
    assert f"--context is {len(big):,} bytes of JSON, more than the limit of {MAX_CONTEXT_BYTES:,}" in err
    assert "(MAX_CONTEXT_BYTES)" in err
    on_disk = tmp_path / "big.json"
    on_disk.write_text(big)
    err = refused(capsys, f"@{on_disk}")
    assert f"context file {on_disk} is {len(big):,} bytes of JSON" in err
    assert "(MAX_CONTEXT_BYTES)" in err
    sparse = tmp_path / "sparse.json"
    with sparse.open("wb") as f:
        f.truncate(6 * 1024**3)  # 6 GiB that would take that much memory if read
    assert "(MAX_CONTEXT_BYTES)" in refused(capsys, f"@{sparse}")
    assert executions(capsys) == []
    assert main(["run", "cli_demo", "--context", '{"name": "ada"}']) == 0  # and a sane one runs


def test_a_context_nested_too_deep_is_refused(cli_flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 200_000):
        err = refused(capsys, '{"a": ' + "[" * depth + "]" * depth + "}")
        assert f"more than the limit of {MAX_JSON_DEPTH} (MAX_JSON_DEPTH)" in err
    assert executions(capsys) == []


def test_a_context_file_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "context.fifo"
    os.mkfifo(fifo)
    env = {**os.environ, "CLOACINA_HOME": str(tmp_path / "home")}
    env.pop("CLOACINA_DATABASE_URL", None)
    for source, kind in ((fifo, "a FIFO (named pipe)"), (Path("/dev/zero"), "a character device")):
        done = subprocess.run(
            [sys.executable, "-m", "cloacina_host", "run", "anything", "--context", f"@{source}"],
            capture_output=True,
            text=True,
            timeout=60,  # a FIFO read would wait for a writer forever, /dev/zero would fill the memory
            env=env,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        assert f"Cannot read context file {source}: it is {kind}, not a regular file." in done.stderr
        assert "Traceback" not in done.stderr
