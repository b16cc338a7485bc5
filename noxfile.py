"""Every way the project is tested, linted, type-checked and benchmarked.

`nox` with no arguments runs what CI runs: lint, typecheck, and the tests on every Python from 3.10
to 3.13 that is present (absent ones are skipped). PostgreSQL tests need CLOACINA_TEST_POSTGRES_URL;
`.ci/postgres.sh` starts a server and prints it.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
KIT = "./cloacina-workflow"
PLUGIN_DIRS = sorted(f"./{p.parent.relative_to(ROOT)}" for p in (ROOT / "plugins").glob("*/pyproject.toml"))


def _install_project(session: nox.Session, *groups: str) -> None:
    extra = [req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)]
    # the kit comes from this tree, not from PyPI; plugins are installed for real (entry points)
    session.install(KIT, ".", *PLUGIN_DIRS, *extra)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Host, kit and every plugin's own tests."""
    _install_project(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict on cloacina_host and cloacina_workflow."""
    _install_project(session, "typecheck")
    session.run("mypy", "cloacina_host", "cloacina-workflow/cloacina_workflow")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks: prints one table per benchmark (see benchmarks/)."""
    _install_project(session, "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)
