"""The README's Python examples run as written: each block whose first line names a file is written
to that file in a fresh project directory, and the scripts and tests among them are run for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"```(?:python|toml)\n# (?P<path>[\w./-]+)\n(?P<body>.*?)```", re.DOTALL)


def _files() -> dict[str, str]:
    return {m["path"]: m["body"] for m in BLOCK.finditer(README.read_text(encoding="utf-8"))}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The README's files, written where their first lines say."""
    files = _files()
    for name in ("src/my_reports/__init__.py", "run_nightly.py", "tests/test_nightly.py", "pyproject.toml"):
        assert name in files, f"the README no longer shows {name}"
    for name, body in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    return tmp_path


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "CLOACINA_HOME": str(project / "home")}
    env.pop("CLOACINA_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_python_api_example_runs_as_written(project: Path) -> None:
    proc = _run(project, "run_nightly.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "completed {'day': '2026-11-24', 'rows': [1, 2, 3], 'total': 6} 1"
    assert (project / "home").is_dir()  # the default database went under the Cloacina home


def test_the_package_test_example_passes_under_pytest(project: Path) -> None:
    proc = _run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_nightly.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
