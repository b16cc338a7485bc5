"""Fixtures every test layer shares: the PostgreSQL server, a fresh database on each backend, and real
distributions (wheels of the plugins and test packages, built with pypa build, installed into targets)."""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

POSTGRES_ENV = "CLOACINA_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's URL (``$CLOACINA_TEST_POSTGRES_URL``; ``.ci/postgres.sh`` starts one and prints it).

    In CI (``$CI`` set) a missing server fails the test rather than skipping it.
    """
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    reason = f"{POSTGRES_ENV} is not set; start a server with `.ci/postgres.sh` and export the URL it prints"
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema of the test database (dropped afterwards)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield _with_search_path(postgres_url, schema)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database on each backend: a SQLite file under ``tmp_path``, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cloacina.db'}"
    return str(request.getfixturevalue("postgres_schema_url"))


CLI_FLOWS_SOURCE = """
from cloacina_workflow import Context, task, workflow


@workflow(name="cli_demo", package="cli_pkg", description="Greets someone, loudly")
class cli_demo:
    @task
    def greet(ctx: Context) -> None:
        ctx.set("greeting", "hello " + ctx.get("name", "world"))

    @task(dependencies=["greet"])
    async def shout(ctx: Context) -> None:
        ctx.set("shout", ctx.get("greeting").upper())


@workflow(name="cli_failing", package="cli_pkg")
class cli_failing:
    @task
    def fine(ctx: Context) -> None:
        ctx.set("fine", True)

    @task(dependencies=["fine"], retry_attempts=1, retry_delay_ms=0)
    def breaks(ctx: Context) -> None:
        raise ValueError("bad thing happened")

    @task(dependencies=["breaks"])
    def never(ctx: Context) -> None:
        pass


@workflow(name="cli_not_json", package="cli_pkg")
class cli_not_json:
    @task
    def store_a_set(ctx: Context) -> None:
        ctx.insert("tags", {"a", "b"})
"""


@pytest.fixture(scope="session")
def cli_flows_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory holding an installed plugin (module + ``.dist-info`` with its entry points).

    Workflows ``cli_pkg::cli_demo`` (greet → shout), ``cli_pkg::cli_failing`` (fine → breaks, retried
    once → never) and ``cli_pkg::cli_not_json`` (writes a set to the context).
    """
    site = tmp_path_factory.mktemp("cli-flows-site")
    module = "cloacina_cli_test_flows"
    (site / f"{module}.py").write_text(CLI_FLOWS_SOURCE, encoding="utf-8")
    info = site / "cloacina_cli_test_flows-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cloacina-cli-test-flows\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[cloacina.workflows]\n"
        + "".join(f"{name} = {module}:{name}\n" for name in ("cli_demo", "cli_failing", "cli_not_json"))
    )
    return site


@pytest.fixture
def cli_flows(cli_flows_site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Make the ``cli_flows_site`` plugin visible to in-process ``main(argv)``, with a private home."""
    monkeypatch.syspath_prepend(str(cli_flows_site))
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLOACINA_DATABASE_URL", raising=False)
    return cli_flows_site


# -- real distributions: wheels built once per session (cached by content), installed into targets --


def load_helper(name: str, relative: str) -> ModuleType:
    """A helper module under ``tests/packages`` (``tests`` is not a package), loaded once per process."""
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "packages" / relative)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def wheelhouse() -> ModuleType:
    """``tests/packages/wheelhouse.py``: builds the test projects' wheels and installs them into targets."""
    return load_helper("cloacina_tests_wheelhouse", "wheelhouse.py")


@pytest.fixture(scope="session")
def wheels(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, wheelhouse: ModuleType
) -> dict[str, Path]:
    """Every plugin's and test package's wheel, by project directory name."""
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    cache_dir = cache.mkdir("cloacina-wheels") if cache is not None else tmp_path_factory.mktemp("wheels")
    return wheelhouse.build_wheels({**wheelhouse.PLUGINS, **wheelhouse.TEST_PACKAGES}, cache_dir)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def plugin_site(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, wheelhouse: ModuleType) -> Path:
    """A directory holding the repository's two real plugins, installed from their wheels."""
    wanted = [wheels[name] for name in wheelhouse.PLUGINS]
    return wheelhouse.install_wheels(wanted, tmp_path_factory.mktemp("plugin-site"))  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def zoo_site(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, wheelhouse: ModuleType) -> Path:
    """The real plugins plus every broken or conflicting test package, installed side by side."""
    return wheelhouse.install_wheels(wheels.values(), tmp_path_factory.mktemp("zoo-site"))  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def reg_archives(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The registry's sample archives (``tests/packages/reg-*``), built with package_workflow, cached by content."""
    cache = getattr(request.config, "cache", None)
    where = cache.mkdir("cloacina-reg-archives") if cache is not None else tmp_path_factory.mktemp("reg-archives")
    module = load_helper("cloacina_tests_reg_archives", "reg-archives/archives.py")
    return module.build_archives(where)  # type: ignore[no-any-return]
