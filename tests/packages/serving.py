"""Helpers the acceptance tests share to drive the CLI in-process and real ``cloacina-ctl serve`` processes.

Loaded with ``load_helper("cloacina_tests_serving", "serving.py")`` from ``tests/conftest.py`` (``tests``
is not a package). Each wait has a deadline only so that a broken command fails its test instead of
hanging it; none is a timing assertion.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from cloacina_host.cli import main

DEADLINE_S = 90.0  # only so that a broken serve fails the test instead of hanging it


def ctl_json(capfd: pytest.CaptureFixture[str], *args: str, status: int = 0) -> Any:
    """``main([*args, "--json"])`` in-process: its exit status must be ``status``; the JSON it printed
    (on stdout when it succeeded, on stderr when it did not)."""
    capfd.readouterr()
    got = main([*args, "--json"])
    captured = capfd.readouterr()
    assert got == status, captured
    return json.loads(captured.out if status == 0 else captured.err)


def ctl_path() -> str:
    """The installed ``cloacina-ctl`` console script of this interpreter's environment."""
    ctl = shutil.which("cloacina-ctl", path=str(Path(sys.executable).parent))
    assert ctl is not None
    return ctl


def start_serve(log: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """The installed ``cloacina-ctl serve`` as a real process (polling every 0.2 s, then ``args``), its output
    in ``log``; ``env`` is added to this process's environment."""
    with log.open("w") as log_file:
        return subprocess.Popen(
            [ctl_path(), "serve", "--interval", "0.2", *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )


def stop_serve(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, as a service manager would; kill only if it does not stop in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def place(archive: Path, target: Path) -> None:
    """Put ``archive`` at ``target`` in one step, as a deployment would (write aside, rename)."""
    staging = target.with_suffix(".part")
    shutil.copy(archive, staging)
    os.replace(staging, target)


def until(
    what: str,
    check: Callable[[], Any],
    procs: subprocess.Popen[str] | Sequence[subprocess.Popen[str]] = (),
    *,
    timeout_s: float = DEADLINE_S,
    name: str = "serve",
) -> Any:
    """The first true value of ``check()``, polled every 0.1 s; the test fails when one of ``procs`` (``name``)
    exits first, or after ``timeout_s``."""
    watched = [procs] if isinstance(procs, subprocess.Popen) else list(procs)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        for proc in watched:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode} while waiting for {what}")
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")
