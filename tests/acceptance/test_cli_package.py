"""The packaging story as a user types it: package -> inspect -> validate, and new -> pytest -> package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cloacina_host import read_archive
from cloacina_host.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "plugins" / "simple-packaged-demo"
CTL = Path(sys.executable).with_name("cloacina-ctl")


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = Path(shutil.copytree(DEMO, tmp_path_factory.mktemp("demo") / "simple-packaged-demo"))
    out = project.parent / "simple-demo.cloacina"
    assert main(["package", str(project), "-o", str(out), "--no-isolation"]) == 0
    return out


def test_package_shows_progress_and_ends_with_path_and_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = Path(shutil.copytree(DEMO, tmp_path / "demo"))
    out = tmp_path / "simple-demo.cloacina"
    assert main(["package", str(project), "-o", str(out), "--no-isolation"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{out} ({out.stat().st_size:,} bytes)\n"
    steps = [
        "[1] Building the wheel with pypa build (no isolation)",
        "[2] Built simple_packaged_demo-1.0.0-py3-none-any.whl",
        "[3] Read METADATA, WHEEL tags (py3-none-any) and 1 entry point(s)",
        "[4] Reading the task graph by loading the wheel in a separate process",
        "[5] Found 1 workflow(s): simple_demo::data_processing",
        f"[6] Wrote {out}",
    ]
    for step in steps:
        assert step in captured.err


def test_package_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], demo_archive: Path) -> None:
    out = tmp_path / "again.cloacina"
    assert main(["package", str(DEMO), "-o", str(out), "--no-isolation", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["path"] == str(out)
    assert result["size"] == out.stat().st_size
    assert (result["package"], result["version"]) == ("simple-packaged-demo", "1.0.0")
    assert result["workflows"][0]["name"] == "simple_demo::data_processing"
    assert out.read_bytes() == demo_archive.read_bytes()  # reproducible, from another directory too


def test_inspect(demo_archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(demo_archive)]) == 0
    out = capsys.readouterr().out
    manifest = read_archive(demo_archive).manifest
    for fragment in [
        "Package      simple-packaged-demo 1.0.0",
        "Author       Cloacina Demo Team",
        "Description  Simple data processing workflow for demonstration",
        "Workflow simple_demo::data_processing - Simple data processing workflow for demonstration",
        "Flow         collect_data → process_data → generate_report",
        "py3-none-any (pure Python: any platform, any architecture)",
        f"Fingerprint  {manifest.workflows[0].fingerprint}",
        f"cloacina-host {manifest.builder.version}, cloacina-workflow {manifest.cloacina_workflow_version}",
        "2 retries, exponential backoff 1000..30000 ms, jitter, on all errors",
        "Step 2: Process the collected data",
    ]:
        assert fragment in out
    # the tree: each task under the one it depends on
    lines = out.splitlines()
    collect = next(i for i, line in enumerate(lines) if "── collect_data" in line)
    assert "── process_data" in lines[collect + 1]
    assert "── generate_report" in lines[collect + 2]
    assert lines[collect + 2].index("generate_report") > lines[collect + 1].index("process_data")


def test_inspect_json_is_the_manifest(demo_archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(demo_archive), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == read_archive(demo_archive).manifest.model_dump(mode="json")
    assert printed["format_version"] == 2


def test_inspect_graphs(demo_archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(demo_archive), "--graph", "mermaid"]) == 0
    mermaid = capsys.readouterr().out
    assert mermaid.startswith("flowchart LR\n")
    assert 'w0t0["collect_data"]' in mermaid
    assert "w0t0 --> w0t1" in mermaid
    assert "w0t1 --> w0t2" in mermaid
    assert main(["inspect", str(demo_archive), "--graph", "dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "simple-packaged-demo" {')
    assert '"simple_demo::data_processing::collect_data" -> "simple_demo::data_processing::process_data";' in dot
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg"], input=dot, text=True, check=True, capture_output=True)


def test_validate(demo_archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(demo_archive)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{demo_archive}: valid (simple-packaged-demo 1.0.0; simple_demo::data_processing)\n"
    assert "✓ entry points load within the time limit and match the manifest" in captured.err
    assert main(["validate", str(demo_archive), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True
    assert report["workflows"] == ["simple_demo::data_processing"]


def test_validate_json_reports_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.cloacina"
    bad.write_bytes(b"not a zip")
    assert main(["validate", str(bad), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["valid"] is False
    assert "is not a .cloacina archive: it is not a zip file" in captured.err


def test_the_installed_console_script(demo_archive: Path) -> None:
    """A real process, as a shell runs it: exit statuses and streams."""
    proc = subprocess.run([str(CTL), "inspect", str(demo_archive)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "collect_data → process_data → generate_report" in proc.stdout
    proc = subprocess.run([str(CTL), "inspect", str(DEMO)], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr == f"error: {DEMO}: is a directory, not a .cloacina file.\n"


def test_new_project_passes_its_tests_and_packages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "my-etl", "--directory", str(tmp_path / "my-etl"), "--author", "Ada"]) == 0
    project = tmp_path / "my-etl"
    assert capsys.readouterr().out.strip() == str(project)
    assert (project / "src" / "my_etl" / "__init__.py").is_file()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout
    out = tmp_path / "my-etl.cloacina"
    assert main(["package", str(project), "-o", str(out), "--no-isolation"]) == 0
    assert main(["validate", str(out)]) == 0
    manifest = read_archive(out).manifest
    assert manifest.package.author == "Ada"
    assert [t.id for t in manifest.workflows[0].tasks] == ["extract", "transform", "load"]
    assert manifest.workflows[0].key == "my_etl::my_etl"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("9lives", "is not a valid project name"), ("json", "standard library module"), ("class", "Python keyword")],
)
def test_new_refuses_bad_names(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, fragment: str) -> None:
    assert main(["new", name, "--directory", str(tmp_path / "p")]) == 1
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_new_refuses_a_non_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    assert main(["new", "my-etl", "--directory", str(tmp_path / "p")]) == 1
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["keep.txt"]


def test_help_lists_the_packaging_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("new", "package", "inspect", "validate", "manifest-schema"):
        assert command in out
    assert main(["inspect", "--help"]) == 0
    assert "cloacina-ctl manifest-schema" in capsys.readouterr().out
