"""The tutorial's end-to-end demo, run as a user runs it: build, register and load, execute, report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[2] / "plugins" / "simple-packaged-demo" / "examples" / "end_to_end_demo.py"

EXPECTED = [
    "🚀 Simple Packaged Workflow Demo",
    "===============================",
    "",
    "Step 1: Building workflow package...",
    re.compile(r"✅ Package built: \d+ bytes"),
    "",
    "Step 2: Setting up registry and loading package...",
    "✅ Package registered and loaded",
    "",
    "Step 3: Executing workflow...",
    "🔍 Collecting data...",
    "✅ Collected 1000 records",
    "⚙️ Processing data...",
    "✅ Processed 950 valid records",
    "📊 Generating report...",
    "✅ Report generated successfully",
    "",
    "📈 Final Report:",
    re.compile(r"   Report ID: RPT_\d+"),
    "   Records Processed: 950",
    "   Success Rate: 95%",
    re.compile(r"   Generated: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00"),
    "",
    "✅ Demo completed successfully!",
]


def test_the_end_to_end_demo_prints_the_tutorials_steps(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOACINA_")}
    env["HOME"] = str(tmp_path)  # so that nothing can land in the real ~/.cloacina
    proc = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(EXPECTED), proc.stdout
    for line, expected in zip(lines, EXPECTED, strict=True):
        if isinstance(expected, str):
            assert line == expected
        else:
            assert expected.fullmatch(line), line
    home = re.search(r"Cloacina home for this demo: (\S+), removed at the end", proc.stderr)
    assert home is not None, proc.stderr
    assert not Path(home.group(1)).exists()
    assert not (tmp_path / ".cloacina").exists()


def test_the_demo_keeps_a_home_it_is_given(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOACINA_")}
    home = tmp_path / "kept"
    for _ in range(2):  # a second run reuses the registered package
        proc = subprocess.run(
            [sys.executable, str(DEMO), "--home", str(home)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.rstrip().endswith("✅ Demo completed successfully!")
    assert (home / "cloacina.db").is_file()
    assert len(list((home / "packages").iterdir())) == 1
