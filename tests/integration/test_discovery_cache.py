"""The scan of installed distributions, in a real process, over wheels installed with installer.

A process reads the metadata once: a wheel installed while it runs is not seen until the process
asks again (``refresh=True`` / ``invalidate_entry_point_cache()``); the reader, the
``importlib_metadata`` distribution, is imported by the first discovery and not before.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow

CHILD = """
import json, sys

import cloacina_host.cli  # what every command imports
from cloacina_host import discover

target = sys.argv[1]
before = "importlib_metadata" in sys.modules
first = sorted(discover(path=[target]).entries)
print(json.dumps({"reader_before": before, "reader_after": "importlib_metadata" in sys.modules, "first": first}))
sys.stdout.flush()
sys.stdin.readline()  # the parent installs another wheel into target meanwhile
again = sorted(discover(path=[target]).entries)
fresh = sorted(discover(path=[target], refresh=True).entries)
print(json.dumps({"again": again, "fresh": fresh}))
"""

DEMO = ["simple_demo::data_processing"]
BOTH = ["etl_toolkit::csv_cleanup", "etl_toolkit::sales_rollup", "simple_demo::data_processing"]


def test_a_process_sees_a_wheel_installed_while_it_runs_only_when_it_asks_again(
    wheels: dict[str, Path], wheelhouse: ModuleType, tmp_path: Path
) -> None:
    target = wheelhouse.install_wheels([wheels["simple-packaged-demo"]], tmp_path / "site")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)  # a hung child fails the test, never hangs it
        assert ready, "the child printed nothing within 60 s"
        first = json.loads(child.stdout.readline() or "null")
        assert first == {"reader_before": False, "reader_after": True, "first": DEMO}, child.stderr
        wheelhouse.install_wheels([wheels["etl-toolkit"]], target)
        out, err = child.communicate("installed\n", timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)  # its own session: whatever it started goes too
            child.wait(timeout=10)
    assert child.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == {"again": DEMO, "fresh": BOTH}


def test_a_new_process_reads_the_metadata_afresh(
    wheels: dict[str, Path], wheelhouse: ModuleType, tmp_path: Path
) -> None:
    target = wheelhouse.install_wheels([wheels["simple-packaged-demo"]], tmp_path / "site")
    script = "import sys; from cloacina_host import discover; print(sorted(discover(path=[sys.argv[1]]).entries))"

    def entries() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout.strip()

    assert entries() == str(DEMO)
    wheelhouse.install_wheels([wheels["etl-toolkit"]], target)
    assert entries() == str(BOTH)
