"""One loader (issue 11, item 3): ``validate``, ``register`` and ``activate`` load a package through
the same probe, so ``validate`` runs the registry's checks and a package they refuse is refused by
all of them, in the same words.

The package is ``tests/packages/loader-bad``, packaged for real while good; ``$LOADER_BAD`` makes it
go bad when it is loaded again (the worker that loads it inherits the environment): a misspelt hook
that only ``pm.check_pending()`` catches, an import error, a workflow missing, other code under the
same graph (a fingerprint mismatch), a hook returning something that is not a workflow.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cloacina_host import ArchiveError, PackagingError, Registry, RegistryError, package_workflow, validate_archive
from cloacina_host.cli import main

PACKAGES = Path(__file__).resolve().parents[1] / "packages"
PROJECT = PACKAGES / "loader-bad"

#: ``$LOADER_BAD`` and what the one message must say (its words after the archive's path).
BAD = {
    "misspelt-hook": (
        "loader-bad 1.0.0 failed to load in a fresh worker: Plugin loader-bad:flows (distribution loader-bad "
        "1.0.0, entry point flows = loader_bad) failed to load: PluginValidationError: unknown hook "
        "'cloacina_task_startd'"
    ),
    "import-error": (
        "loader-bad 1.0.0 failed to load in a fresh worker: Plugin loader-bad:flows (distribution loader-bad "
        "1.0.0, entry point flows = loader_bad) failed to load: RuntimeError: loader_bad refuses to import."
    ),
    "missing-workflow": (
        "loader-bad 1.0.0 does not give workflow(s) loader_bad::second when loaded, yet manifest.json lists them."
    ),
    "fingerprint": ("loader-bad 1.0.0 workflow 'loader_bad::second' has fingerprint sha256:"),
    "not-a-workflow": (
        "loader-bad 1.0.0 failed to load in a fresh worker: Plugin loader-bad:flows returned str 'second_draft' "
        "from cloacina_workflows(), not a Workflow."
    ),
}


def _archives() -> ModuleType:
    name = "cloacina_tests_reg_archives"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PACKAGES / "reg-archives" / "archives.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert "LOADER_BAD" not in os.environ  # packaged while good: its manifest is the good one
    cache = getattr(request.config, "cache", None)
    where = cache.mkdir("cloacina-loader-archives") if cache is not None else tmp_path_factory.mktemp("loader")
    return _archives().archive(where, "loader-bad", PROJECT)  # type: ignore[no-any-return]


@pytest.fixture
def registry(database_url: str, tmp_path: Path) -> Registry:
    reg = Registry(database_url, home=tmp_path / "home", load_timeout_s=30)
    yield reg  # type: ignore[misc]
    reg.close()


def test_the_good_package_passes_both(archive: Path, registry: Registry) -> None:
    validate_archive(archive)
    result = registry.register(archive)
    assert result.active
    assert [w.key for w in validate_archive(archive).manifest.workflows] == ["loader_bad::first", "loader_bad::second"]


@pytest.mark.parametrize("mode", sorted(BAD))
def test_validate_and_register_refuse_the_same_package_in_the_same_words(
    mode: str, archive: Path, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADER_BAD", mode)
    with pytest.raises(ArchiveError) as validated:
        validate_archive(archive)
    with pytest.raises(RegistryError) as registered:
        registry.register(archive)
    assert str(validated.value) == str(registered.value)
    assert str(validated.value).startswith(f"{archive}: {BAD[mode]}")
    assert "Traceback" not in str(validated.value)
    # refused: the registry and this machine are as they were
    assert registry.list_packages() == []
    assert not any((tmp_path / "home").rglob("loader_bad"))


@pytest.mark.parametrize("mode", ["misspelt-hook", "fingerprint"])
def test_activate_refuses_it_in_the_same_words(
    mode: str, archive: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register(archive, activate=False)
    monkeypatch.setenv("LOADER_BAD", mode)
    with pytest.raises(ArchiveError) as validated:
        validate_archive(archive)
    with pytest.raises(RegistryError) as activated:
        registry.activate("loader-bad", "1.0.0")
    words = str(validated.value).removeprefix(f"{archive}: ")
    assert str(activated.value) == f"loader-bad==1.0.0: {words}"
    assert registry.show("loader-bad").active_version is None  # refused: the active version did not change


def test_package_refuses_a_misspelt_hook_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _archives().copy_project(PROJECT, tmp_path)
    monkeypatch.setenv("LOADER_BAD", "misspelt-hook")
    with pytest.raises(PackagingError) as info:
        package_workflow(project, tmp_path / "out.cloacina", isolation=False)
    assert "loader-bad failed to load in a fresh worker: Plugin loader-bad:flows" in str(info.value)
    assert "unknown hook 'cloacina_task_startd'" in str(info.value)
    assert not (tmp_path / "out.cloacina").exists()


def test_the_cli_says_the_same_for_validate_and_register(
    archive: Path,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", database_url)
    monkeypatch.setenv("LOADER_BAD", "misspelt-hook")
    said = {}
    for command in ("validate", "register"):
        assert main([command, str(archive)]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert "unknown hook 'cloacina_task_startd'" in err
        said[command] = " ".join(err.split("error: ", 1)[1].split())  # register's progress steps come first
    assert said["validate"] == said["register"]
    assert said["validate"].startswith(f"{archive}: {BAD['misspelt-hook']}")
