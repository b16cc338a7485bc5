"""``--bundle-deps``: the package's own requirements travel in the archive as wheels, and loading the
package (at packaging time and in validate) finds them there. ``pkg-helper`` is built here, by pypa build."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import zipfile
from pathlib import Path

import build
import pytest

from cloacina_host import PackagingError, package_workflow, validate_archive
from cloacina_host.cli import main

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[1] / "packages" / "pkg-samples"


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pkg-helper's wheel, built from its project without isolation: the only place it exists."""
    assert importlib.util.find_spec("pkg_helper") is None, "pkg_helper must not be installed in the test environment"
    out = tmp_path_factory.mktemp("wheelhouse")
    build.ProjectBuilder(SAMPLES / "helper").build("wheel", out)
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SAMPLES / "with-dep", tmp_path / "with-dep"))


def test_bundled_dependency(project: Path, wheelhouse: Path, tmp_path: Path) -> None:
    result = package_workflow(
        project,
        tmp_path / "dep.cloacina",
        isolation=False,
        bundle_deps=True,
        find_links=[str(wheelhouse)],
        no_index=True,
    )
    m = result.manifest
    # cloacina-workflow is the host's; the python_version < '3.0' requirement does not apply here
    assert [b.filename for b in m.bundled_wheels] == ["pkg_helper-1.3.0-py3-none-any.whl"]
    helper = (wheelhouse / "pkg_helper-1.3.0-py3-none-any.whl").read_bytes()
    assert m.bundled_wheels[0].sha256 == hashlib.sha256(helper).hexdigest()
    with zipfile.ZipFile(result.path) as zf:
        assert zf.namelist() == [
            "manifest.json",
            "wheels/pkg_helper-1.3.0-py3-none-any.whl",
            "wheels/pkg_with_dep-0.3.0-py3-none-any.whl",
        ]
    assert [wf.key for wf in m.workflows] == ["pkg_with_dep::doubler"]
    report = validate_archive(result.path)  # loads pkg_with_dep with pkg_helper from the bundled wheel
    assert report.manifest == m


def test_without_bundling_the_import_fails_at_packaging_time(project: Path, tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="No module named 'pkg_helper'") as info:
        package_workflow(project, tmp_path / "dep.cloacina", isolation=False)
    assert "pkg-with-dep:doubler" in str(info.value)
    assert not (tmp_path / "dep.cloacina").exists()


def test_unavailable_dependency(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    out = tmp_path / "dep.cloacina"
    args = ["package", str(project), "-o", str(out), "--no-isolation", "--bundle-deps", "--no-index"]
    assert main([*args, "--find-links", str(empty)]) == 1
    err = capsys.readouterr().err
    assert "Could not get wheels for the requirements of" in err
    assert "pkg-helper>=1.0" in err
    assert not out.exists()
