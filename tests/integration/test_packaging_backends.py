"""Packaging works whatever PEP 517 backend a project uses: setuptools, flit-core, hatchling,
poetry-core, pdm-backend. Each sample is built for real (``cloacina-ctl package``, pypa build in an
isolated environment, so the backend itself is downloaded), then ``inspect --json`` and ``validate``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BACKENDS = Path(__file__).resolve().parents[1] / "packages" / "backends"
CTL = Path(sys.executable).with_name("cloacina-ctl")
#: Generous: an isolated build downloads and installs the backend.
TIMEOUT_S = 600


def ctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [str(CTL), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(
    ("backend", "tags"),
    [
        ("setuptools", ["py3-none-any"]),
        ("flit-core", ["py3-none-any"]),
        ("hatchling", ["py3-none-any"]),
        ("poetry-core", ["py2-none-any", "py3-none-any"]),  # its wheel is ...-py2.py3-none-any.whl
        ("pdm-backend", ["py2-none-any", "py3-none-any"]),
    ],
)
def test_package_inspect_validate_round_trip(backend: str, tags: list[str], tmp_path: Path) -> None:
    project = tmp_path / backend
    shutil.copytree(BACKENDS / backend, project, ignore=shutil.ignore_patterns("__pycache__", "dist", "build"))
    module = "be_" + backend.replace("-", "_")
    archive = tmp_path / f"{backend}.cloacina"

    built = ctl("package", str(project), "-o", str(archive), "--json", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    result = json.loads(built.stdout)
    assert result["package"] == module.replace("_", "-")
    assert result["wheel"].endswith(f"-{'.'.join(t.split('-')[0] for t in tags)}-none-any.whl")
    assert [w["name"] for w in result["workflows"]] == [f"{module}::flow"]

    shown = ctl("inspect", str(archive), "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    manifest = json.loads(shown.stdout)
    assert [f"{t['python']}-{t['abi']}-{t['platform']}" for t in manifest["wheel"]["tags"]] == tags
    assert manifest["wheel"]["pure"] is True
    assert manifest["package"]["summary"] == f"A workflow package built with {backend}"
    assert [t["id"] for t in manifest["workflows"][0]["tasks"]] == ["first", "second"]

    text = ctl("inspect", str(archive), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert f"{', '.join(tags)} (pure Python: any platform, any architecture)" in text.stdout

    checked = ctl("validate", str(archive), "--json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["valid"] is True
    assert report["workflows"] == [f"{module}::flow"]
