"""The reference package's ``examples/package_workflow.py`` (the tutorial's example) runs and packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cloacina_host import read_archive

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "plugins" / "simple-packaged-demo" / "examples" / "package_workflow.py"


def test_example_packages_the_demo(tmp_path: Path) -> None:
    out = tmp_path / "simple-demo.cloacina"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), str(out), "--no-isolation"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"✅ Package built: {out.stat().st_size} bytes" in proc.stdout
    assert "workflow simple_demo::data_processing: collect_data → process_data → generate_report" in proc.stdout
    manifest = read_archive(out).manifest
    assert manifest.package.name == "simple-packaged-demo"
    assert manifest.workflows[0].author == "Cloacina Demo Team"
