"""``package_workflow`` and ``validate_archive`` on real projects: wheels built by pypa ``build``, task
graphs read in a child process, archives compared byte for byte, and every kind of bad project."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import cloacina_workflow
from cloacina_host import (
    ArchiveError,
    PackageResult,
    PackagingError,
    __version__,
    package_workflow,
    read_archive,
    validate_archive,
)
from cloacina_host.cli import main

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[1] / "packages" / "pkg-samples"


def copy_sample(name: str, where: Path) -> Path:
    target = where / name
    shutil.copytree(SAMPLES / name, target, ignore=shutil.ignore_patterns("__pycache__", "dist", "build"))
    return target


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    tmp = tmp_path_factory.mktemp("flows")
    return package_workflow(copy_sample("flows", tmp), tmp / "out" / "flows.cloacina", isolation=False)


def test_manifest_describes_the_package(flows: PackageResult) -> None:
    m = read_archive(flows.path).manifest
    assert m == flows.manifest
    assert m.format_version == 2
    assert (m.package.name, m.package.version) == ("pkg-flows", "2.1.0")
    assert m.package.summary == "Two workflows, one a diamond: a sample project the packaging tests build"
    assert m.package.author == "Packaging Tests"
    assert m.package.license == "MIT"
    assert m.package.requires_python == ">=3.10"
    assert m.package.requirements == ("cloacina-workflow>=0.1",)
    assert m.wheel.filename == "pkg_flows-2.1.0-py3-none-any.whl"
    assert [str(t) for t in m.wheel.tags] == ["py3-none-any"]
    assert m.wheel.pure is True
    assert m.bundled_wheels == ()
    assert m.cloacina_workflow_version == cloacina_workflow.__version__
    assert (m.builder.name, m.builder.version) == ("cloacina-host", __version__)
    assert m.created_at.isoformat() == "1980-01-01T00:00:00+00:00"


def test_task_graph_read_from_the_built_wheel(flows: PackageResult) -> None:
    diamond, nightly = flows.manifest.workflows
    assert diamond.key == "pkg_flows::diamond"
    assert (diamond.entry_point.name, diamond.entry_point.value) == ("diamond", "pkg_flows:diamond")
    assert diamond.description == "Fan out from fetch to two branches and join in merge."
    assert [(t.id, t.dependencies) for t in diamond.tasks] == [
        ("fetch", ()),
        ("left", ("fetch",)),
        ("right", ("fetch",)),
        ("merge", ("left", "right")),
    ]
    fetch, left, right, _merge = diamond.tasks
    assert (fetch.retry.attempts, fetch.retry.backoff, fetch.retry.delay_ms) == (2, "fixed", 500)
    assert fetch.docstring == "Fetch the input."
    assert left.timeout_s == 5
    assert (right.retry.condition, right.retry.jitter) == ("transient", False)
    assert nightly.key == "pkg_flows::nightly"
    assert (nightly.entry_point.name, nightly.entry_point.value) == ("nightly", "pkg_flows.hooks")
    assert [t.id for t in nightly.tasks] == ["sweep"]


def test_graph_is_read_in_another_process_with_the_same_fingerprint(flows: PackageResult) -> None:
    assert "pkg_flows" not in sys.modules  # packaging never imported the package here
    src = SAMPLES / "flows" / "src"
    code = "import sys, json; sys.path.insert(0, sys.argv[1]); import pkg_flows; print(pkg_flows.diamond.fingerprint())"
    here = subprocess.run([sys.executable, "-c", code, str(src)], capture_output=True, text=True, check=True)
    assert flows.manifest.workflows[0].fingerprint == here.stdout.strip()


def test_archive_layout(flows: PackageResult) -> None:
    with zipfile.ZipFile(flows.path) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["manifest.json", "wheels/pkg_flows-2.1.0-py3-none-any.whl"]
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o100644
        assert info.compress_type == zipfile.ZIP_DEFLATED
    assert flows.size == flows.path.stat().st_size


def test_same_sources_give_byte_identical_archives(tmp_path: Path, flows: PackageResult) -> None:
    # another copy of the project, in another directory, packaged again: the same bytes
    again = package_workflow(copy_sample("flows", tmp_path), tmp_path / "again.cloacina", isolation=False)
    assert again.path.read_bytes() == flows.path.read_bytes()
    assert again.sha256 == flows.sha256


def test_source_date_epoch_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flows: PackageResult) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    project = copy_sample("flows", tmp_path)
    first = package_workflow(project, tmp_path / "a.cloacina", isolation=False)
    second = package_workflow(project, tmp_path / "b.cloacina", isolation=False)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.path.read_bytes() != flows.path.read_bytes()
    assert first.manifest.created_at.isoformat() == "2023-11-14T22:13:20+00:00"
    with zipfile.ZipFile(first.path) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}
        wheel = zipfile.ZipFile(io.BytesIO(zf.read("wheels/pkg_flows-2.1.0-py3-none-any.whl")))
        # the backend saw SOURCE_DATE_EPOCH too: the wheel's own members carry that date
        assert {i.date_time for i in wheel.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_isolated_build(tmp_path: Path) -> None:
    """The default, as `python -m build` does it: a fresh environment with the build requirements."""
    result = package_workflow(copy_sample("flows", tmp_path), tmp_path / "iso.cloacina")
    assert result.manifest.package.name == "pkg-flows"
    assert [wf.key for wf in result.manifest.workflows] == ["pkg_flows::diamond", "pkg_flows::nightly"]
    validate_archive(result.path)


def test_validate_accepts_what_package_wrote(flows: PackageResult) -> None:
    report = validate_archive(flows.path)
    assert report.manifest == flows.manifest
    assert len(report.checks) >= 8


def _rewrite_manifest(source: Path, target: Path, change: dict[str, object]) -> Path:
    with zipfile.ZipFile(source) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        wheels = [(i.filename, zf.read(i)) for i in zf.infolist()[1:]]
    workflow = manifest["workflows"][0]
    workflow.update(change)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, data in wheels:
            zf.writestr(name, data)
    return target


def test_validate_refuses_a_manifest_that_lies_about_fingerprints(tmp_path: Path, flows: PackageResult) -> None:
    forged = _rewrite_manifest(flows.path, tmp_path / "forged.cloacina", {"fingerprint": "sha256:" + "0" * 64})
    read_archive(forged)  # statically fine: only loading the code shows the lie
    with pytest.raises(ArchiveError, match=r"workflow 'pkg_flows::diamond' has fingerprint sha256:\w+ when loaded"):
        validate_archive(forged)


def test_validate_refuses_a_manifest_that_lies_about_tasks(tmp_path: Path, flows: PackageResult) -> None:
    tasks = [t.model_dump(mode="json") for t in flows.manifest.workflows[0].tasks]
    tasks[3]["dependencies"] = ["left"]
    forged = _rewrite_manifest(flows.path, tmp_path / "forged.cloacina", {"tasks": tasks})
    with pytest.raises(ArchiveError, match=r"the tasks that load differ from the tasks in manifest\.json"):
        validate_archive(forged)


def test_validate_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = package_workflow(copy_sample("slow-import", tmp_path), tmp_path / "slow.cloacina", isolation=False)
    monkeypatch.setenv("PKG_SLOW_IMPORT_S", "30")
    limit = r"pkg-slow-import 0\.1\.0 did not finish loading its entry points within 1 s \(the limit\)"
    with pytest.raises(ArchiveError, match=limit):
        validate_archive(archive.path, load_timeout_s=1)


def test_validate_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = copy_sample("flows", tmp_path)
    assert main(["validate", str(project), "--no-isolation", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True
    assert report["workflows"] == ["pkg_flows::diamond", "pkg_flows::nightly"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flows"]  # nothing written


# -- bad projects: a clear message, exit status 1, no archive ----------------------------------------


def _package_cli(project: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)  # `package -o` into a missing directory is refused first
    assert main(["package", str(project), "-o", str(out), "--no-isolation", *extra]) == 1
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir()] == [] if out.parent.exists() else True
    err = capsys.readouterr().err
    assert "Traceback" not in err.split("--- build backend output ---")[0]
    return err


def test_no_pyproject(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "project").mkdir()
    err = _package_cli(tmp_path / "project", tmp_path / "out" / "x.cloacina", capsys)
    assert "has no pyproject.toml, so it is not a Python project that can be built" in err


def test_no_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _package_cli(copy_sample("no-entry-point", tmp_path), tmp_path / "out" / "x.cloacina", capsys)
    assert "it declares no cloacina.workflows entry point" in err
    assert '[project.entry-points."cloacina.workflows"]' in err


def test_entry_point_fails_to_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _package_cli(copy_sample("import-error", tmp_path), tmp_path / "out" / "x.cloacina", capsys)
    assert "pkg-import-error:broken" in err
    assert "failed to load: RuntimeError: pkg_import_error refuses to import: SAMPLE-IMPORT-FAILURE" in err


def test_build_backend_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = copy_sample("backend-error", tmp_path)
    err = _package_cli(project, tmp_path / "out" / "x.cloacina", capsys)
    assert "The build backend failed to build a wheel from" in err
    assert "SAMPLE-BACKEND-FAILURE" in err
    assert "Run with --verbose to see the backend's whole output" in err
    assert "SAMPLE-BACKEND-DETAIL" not in err
    err = _package_cli(project, tmp_path / "out" / "x.cloacina", capsys, "--verbose")
    assert "failing_backend: compiling the extension module..." in err  # the backend's own output, kept
    assert "SAMPLE-BACKEND-DETAIL error: cc exited with status 1" in err


def test_backend_error_through_the_api(tmp_path: Path) -> None:
    with pytest.raises(PackagingError) as info:
        package_workflow(copy_sample("backend-error", tmp_path), tmp_path / "x.cloacina", isolation=False)
    assert info.value.output is not None
    assert "SAMPLE-BACKEND-DETAIL" in info.value.output
    assert info.value.project == (tmp_path / "backend-error").resolve()
    assert not (tmp_path / "x.cloacina").exists()


def test_failure_keeps_an_existing_archive_untouched(tmp_path: Path, flows: PackageResult) -> None:
    out = tmp_path / "keep.cloacina"
    out.write_bytes(flows.path.read_bytes())
    with pytest.raises(PackagingError):
        package_workflow(copy_sample("import-error", tmp_path), out, isolation=False)
    assert out.read_bytes() == flows.path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["import-error", "keep.cloacina"]
