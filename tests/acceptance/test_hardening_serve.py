"""Issue 10, classes 3 and 5 (serve): nothing dropped into the watched directory blocks or kills `serve`.

A real `cloacina-ctl serve --watch` process gets a package whose import hangs, a 6 GiB sparse file,
a FIFO and a link to /dev/zero, while a detached execution waits to be picked up: the execution
completes while the hanging package is still being loaded, each bad entry is one line, the hanging
file is given up after the per-file time limit, and serve stops cleanly.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

SERVING = importlib.import_module("tests.conftest").load_helper(  # tests/ is not a package
    "cloacina_tests_serving", "serving.py"
)
ctl_json, place, start_serve, until = SERVING.ctl_json, SERVING.place, SERVING.start_serve, SERVING.until

pytestmark = pytest.mark.slow


def test_serve_keeps_scheduling_beside_a_hanging_archive_and_skips_what_is_not_an_archive(
    tmp_path: Path,
    reg_archives: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    home, watch = tmp_path / "home", tmp_path / "watch"
    watch.mkdir()
    monkeypatch.setenv("CLOACINA_HOME", str(home))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", f"sqlite:///{tmp_path / 'cloacina.db'}")
    monkeypatch.setenv("REG_HANG_SECONDS", "600")  # reg-hang's import, in serve's loader, outlasts every limit
    place(reg_archives["swap-1"], watch / "reg-swap.cloacina")
    log = tmp_path / "serve.log"
    proc = start_serve(log, "--watch", str(watch), "--watch-timeout", "10")
    try:

        def output() -> str:
            return log.read_text()

        until("serve to register reg-swap", lambda: "registered reg-swap 1.0.0, active" in output(), proc)
        with (watch / "huge.cloacina").open("wb") as f:
            f.truncate(6 * 1024**3)  # sparse: 6 GiB that reading would need in memory
        os.mkfifo(watch / "pipe.cloacina")  # reading would wait for a writer forever
        (watch / "zero.cloacina").symlink_to("/dev/zero")  # reading would never end
        until("serve to skip the three", lambda: output().count("; skipped") >= 3, proc)
        place(reg_archives["hang"], watch / "reg-hang.cloacina")
        execution_id = ctl_json(capfd, "run", "swap_flow", "--detach")["execution_id"]

        def finished() -> Any:
            shown = ctl_json(capfd, "executions", "show", execution_id)
            return shown if shown["status"] not in ("queued", "running") else None

        done = until("the detached execution", finished, proc)
        # it ran while reg-hang was still being loaded: nothing about its outcome has been said yet
        assert "reg-hang.cloacina was not registered" not in output()
        assert done["status"] == "completed"
        assert f"picked up execution {execution_id}" in output()

        until(
            "serve to give up on reg-hang after the time limit per file",
            lambda: "reg-hang.cloacina: not registered within 10 s (the time limit per file)" in output(),
            proc,
        )
        # the registry's own load timeout ends the hanging load; serve reports it and goes on
        until(
            "the late outcome of reg-hang",
            lambda: "(after the time limit per file)" in output(),
            proc,
        )
        packages = ctl_json(capfd, "packages", "list")["packages"]
        assert [p["name"] for p in packages] == ["reg-swap"]  # nothing of reg-hang was registered
        assert ctl_json(capfd, "run", "swap_flow", "--detach")["execution_id"]  # still scheduling
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "huge.cloacina is 6,442,450,944 bytes, more than the archive limit of" in text
    assert "pipe.cloacina is a FIFO (named pipe), not a regular file; skipped" in text
    assert "zero.cloacina is a character device, not a regular file; skipped" in text
    assert text.count("pipe.cloacina is a FIFO") == 1  # said once, not at every pass
    assert "Traceback" not in text
