"""Every way the project is tested, linted, type-checked and benchmarked.

`nox` with no arguments runs what CI runs: lint, typecheck, the tests on 3.10, 3.11 and 3.13 when
present (absent ones are skipped; `nox -s tests` adds 3.12), and short runs of the adversarial suites
(fuzz, chaos). PostgreSQL tests need CLOACINA_TEST_POSTGRES_URL; `.ci/postgres.sh` starts a server and prints it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
#: what `nox` alone runs (CI): the tests on 3.11 (every test), and the fast ones on the oldest and the
#: newest Python supported; 3.12, between them, runs with `nox -s tests-3.12` (CI stays under 20 minutes)
nox.options.sessions = ["lint", "typecheck", "tests-3.10", "tests-3.11", "tests-3.13", "fuzz", "chaos"]
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True
# uv creates and fills the sessions' environments (the README installs `nox[uv]`): on this 2-core machine
# one session's install took 80 s with uv against 806 s with pip; plain virtualenv + pip when uv is absent
nox.options.default_venv_backend = "uv|virtualenv"

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
KIT = "./cloacina-workflow"
BROWSER_TEST = ["playwright>=1.40"]
PLUGIN_DIRS = sorted(f"./{p.parent.relative_to(ROOT)}" for p in (ROOT / "plugins").glob("*/pyproject.toml"))
# A machine (this one's image, for one) may export PYTHONDONTWRITEBYTECODE=1: then each process a session
# starts (a `cloacina-ctl`, a server, a package's worker, pytest's xdist workers) compiles every module it
# imports from source again, as no `.pyc` is ever written: `import sqlalchemy` alone then costs 0.44 s
# instead of about 0.1 s, and pytest rewrites the asserts of every test module in each worker. Every
# session's commands inherit this process's environment: unset here, once, it is unset for all of them.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def _install_project(session: nox.Session, *groups: str) -> None:
    extra = [req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)]
    # the kit comes from this tree, not from PyPI; plugins are installed for real (entry points)
    # the host with its `server` extra: the server's tests run in every session
    # (and Playwright for the web UI's browser test: it drives Debian's Chromium, which .ci/run installs;
    # never `playwright install`)
    browser = BROWSER_TEST if "test" in groups else []
    # pip itself too: a uv environment has none, and `package --bundle-deps` runs `pip wheel`
    session.install("pip", KIT, ".[server,otel]", *PLUGIN_DIRS, *extra, *browser)


def _postgres_url(session: nox.Session) -> str | None:
    """CLOACINA_TEST_POSTGRES_URL, else whatever `.ci/postgres.sh` starts (it installs the server when root)."""
    url = os.environ.get("CLOACINA_TEST_POSTGRES_URL")
    if url:
        return url
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "postgres.sh")], capture_output=True, text=True, check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        url = proc.stdout.strip().splitlines()[-1]
        os.environ["CLOACINA_TEST_POSTGRES_URL"] = url  # later sessions of this run reuse the server
        return url
    session.warn(f"No PostgreSQL server ({proc.stderr.strip()[-300:]}); PostgreSQL tests will be skipped (CI fails).")
    return None


def _chromium(session: nox.Session) -> None:
    """CLOACINA_CHROMIUM, else what `.ci/chromium.sh` finds (it installs Debian's package when root)."""
    if os.environ.get("CLOACINA_CHROMIUM"):
        return
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "chromium.sh")], capture_output=True, text=True, check=False)
    if proc.returncode == 0 and proc.stdout.strip():
        os.environ["CLOACINA_CHROMIUM"] = proc.stdout.strip().splitlines()[-1]  # later sessions reuse it
    else:
        session.warn(f"No Chromium ({proc.stderr.strip()[-300:]}); the browser test will be skipped (CI fails).")


#: the interpreter every test runs on; on the others the ``slow`` end-to-end tests (wheel builds,
#: subprocess hosts) are left out unless ``-- --all-tests`` is given, which keeps CI near 20 minutes
FULL_PYTHON = "3.11"


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Host, kit and every plugin's own tests (PostgreSQL ones against a real server).

    Every test runs on 3.11; on 3.10, 3.12 and 3.13 the tests marked ``slow`` run only with
    ``nox -s tests -- --all-tests`` (what they exercise is the same code the fast tests cover there).
    """
    _install_project(session, "test")
    url = _postgres_url(session)
    env = {"CLOACINA_TEST_POSTGRES_URL": url} if url else {}
    _chromium(session)
    args = [arg for arg in session.posargs if arg != "--all-tests"]
    if session.python != FULL_PYTHON and "--all-tests" not in session.posargs:
        args = ["-m", "not slow", *args]
    session.run("pytest", *_processes(), *ADVERSARIAL_IGNORED, *args, env=env)


def _processes() -> list[str]:
    """pytest-xdist's worker count: CLOACINA_TEST_PROCESSES, else one more than the cores (``0``: one process).

    Much of the suite waits on subprocesses, builds and databases, so a worker beyond the cores keeps
    them busy: on 2 cores, 3 workers ran the suite in 5.5 min where 2 took about 8.
    """
    count = os.environ.get("CLOACINA_TEST_PROCESSES") or str((os.cpu_count() or 1) + 1)
    # worksteal: a worker that runs out takes tests queued on a busy one, so a long test ends the run sooner
    return [] if count == "0" else ["--numprocesses", count, "--dist", "worksteal"]


#: the fuzz and chaos suites run in their own sessions, time-boxed, not in every `tests` run
ADVERSARIAL_IGNORED = ["--ignore=tests/fuzz", "--ignore=tests/chaos"]


def _long(session: nox.Session) -> tuple[bool, list[str]]:
    """Whether ``--long`` was passed (``nox -s fuzz -- --long``), and the other arguments (for pytest)."""
    return "--long" in session.posargs, [arg for arg in session.posargs if arg != "--long"]


@nox.session(python="3.11")
def fuzz(session: nox.Session) -> None:
    """Hypothesis on the archive reader and the manifest/context decoders, time-boxed: CLOACINA_FUZZ_SECONDS
    (60 by default, 600 with `-- --long`) shared by the targets; CLOACINA_FUZZ_SEED replays a run."""
    _install_project(session, "test")
    long, args = _long(session)
    seconds = os.environ.get("CLOACINA_FUZZ_SECONDS") or ("600" if long else "60")
    # the targets share the time box; a target that hangs still fails (pytest-timeout) well after it
    timeout = f"--timeout={int(float(seconds)) + 300}"
    session.run("pytest", "tests/fuzz", "-q", timeout, *args, env={"CLOACINA_FUZZ_SECONDS": seconds})


@nox.session(python="3.11")
def chaos(session: nox.Session) -> None:
    """Repeated kill -9 of run, serve, register and PostgreSQL workers at seeded random moments:
    CLOACINA_CHAOS_ROUNDS kills per target (3 by default, 20 with `-- --long`); CLOACINA_CHAOS_SEED replays."""
    _install_project(session, "test")
    url = _postgres_url(session)
    if not url:
        session.error("The chaos session kills PostgreSQL workers: it needs a server (CLOACINA_TEST_POSTGRES_URL).")
    long, args = _long(session)
    rounds = os.environ.get("CLOACINA_CHAOS_ROUNDS") or ("20" if long else "3")
    env = {"CLOACINA_TEST_POSTGRES_URL": url, "CLOACINA_CHAOS_ROUNDS": rounds}
    timeout = f"--timeout={60 * int(rounds) + 300}"  # a round takes seconds; a hung one fails, with stacks
    session.run("pytest", "tests/chaos", "-q", timeout, *args, env=env)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and the layer order (import-linter, ``[tool.importlinter]``)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.install(KIT, ".[server]")  # import-linter reads the imports of the installed packages
    session.run("lint-imports")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict on cloacina_host and cloacina_workflow."""
    _install_project(session, "typecheck")
    session.run("mypy", "cloacina_host", "cloacina-workflow/cloacina_workflow")


#: the benchmarks that take ``--baseline GITREF`` (``benchmarks/_baseline.py``)
BASELINE_BENCHMARKS = ("bench_engine", "bench_packaging")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Every benchmarks/bench_*.py, each printing its table. `nox -s bench -- engine` runs the matching ones;
    with CLOACINA_BENCH_BASELINE=GITREF, those that can (engine, packaging) measure that commit beside this tree."""
    _install_project(session, "bench")
    url = _postgres_url(session)
    env = {"CLOACINA_TEST_POSTGRES_URL": url} if url else {}
    baseline = os.environ.get("CLOACINA_BENCH_BASELINE")
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        if session.posargs and not any(word in script.stem for word in session.posargs):
            continue
        session.log(f"--- {script.name}")
        side_by_side = ["--baseline", baseline] if baseline and script.stem in BASELINE_BENCHMARKS else []
        session.run("python", str(script), *side_by_side, env=env)
