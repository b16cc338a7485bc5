"""Real distributions for the discovery tests: wheels built once per session, installed into targets."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


def load_wheelhouse() -> ModuleType:
    """``tests/packages/wheelhouse.py``, loaded once per process (``tests`` is not a package)."""
    name = "cloacina_tests_wheelhouse"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "packages" / "wheelhouse.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


wheelhouse = load_wheelhouse()


@pytest.fixture(scope="session")
def wheels(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every plugin's and test package's wheel, by project directory name."""
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    cache_dir = cache.mkdir("cloacina-wheels") if cache is not None else tmp_path_factory.mktemp("wheels")
    return wheelhouse.build_wheels({**wheelhouse.PLUGINS, **wheelhouse.TEST_PACKAGES}, cache_dir)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def plugin_site(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the repository's two real plugins, installed from their wheels."""
    wanted = [wheels[name] for name in wheelhouse.PLUGINS]
    return wheelhouse.install_wheels(wanted, tmp_path_factory.mktemp("plugin-site"))  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def zoo_site(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real plugins plus every broken or conflicting test package, installed side by side."""
    return wheelhouse.install_wheels(wheels.values(), tmp_path_factory.mktemp("zoo-site"))  # type: ignore[no-any-return]


@pytest.fixture
def fresh_imports() -> Iterator[None]:
    """Discover in-process without seeing modules imported earlier; restores sys.path and sys.modules."""
    with wheelhouse.fresh_imports():
        yield
