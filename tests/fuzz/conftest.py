"""The fuzz session (``nox -s fuzz``): a memory ceiling for the process, the real archives the targets
mutate, and a summary of what was tried. The budget and the per-example deadline are in ``_budget``."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

from ._budget import ARTIFACTS, EXAMPLE_SECONDS, MEMORY_LIMIT, SEED, SHRINK, TALLY, TOTAL_SECONDS

ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    # the inputs are large on purpose: hypothesis warns when it shows one, and warnings are errors here
    config.addinivalue_line("filterwarnings", "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")


def pytest_report_header() -> str:
    return (
        f"cloacina fuzz: seed {SEED} (CLOACINA_FUZZ_SEED), budget {TOTAL_SECONDS:g}s (CLOACINA_FUZZ_SECONDS), "
        f"per-example deadline {EXAMPLE_SECONDS:g}s, shrinking {'on' if SHRINK else 'off'}, "
        f"memory limit {MEMORY_LIMIT // 1024**3} GiB"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    write = terminalreporter.write_line
    terminalreporter.section("cloacina fuzz summary")
    total = sum(TALLY.examples.values())
    write(f"seed {SEED}; {total} examples in {len(TALLY.examples)} targets; failing inputs kept in {ARTIFACTS}")
    for name, count in sorted(TALLY.examples.items()):
        verdict = TALLY.failures.get(name, "ok")
        write(f"  {name:<34} {count:>6} examples {TALLY.seconds.get(name, 0.0):6.1f}s  {verdict}")
    write(f"reproduce with CLOACINA_FUZZ_SEED={SEED} CLOACINA_FUZZ_SECONDS={TOTAL_SECONDS:g} nox -s fuzz")


def _packaging_helpers() -> tuple[ModuleType, ModuleType]:
    """The unit tests' archive builders and mutation strategies (``tests/unit/packaging``), imported."""
    import importlib

    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    builders = importlib.import_module("tests.unit.packaging.conftest")
    mutations = importlib.import_module("tests.unit.packaging.test_mutations")
    return builders, mutations


@pytest.fixture(scope="session")
def packaging_helpers() -> tuple[ModuleType, ModuleType]:
    return _packaging_helpers()


@pytest.fixture(scope="session")
def real_archives(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The bytes of real archives, built by ``package_workflow`` with the registry tests' builder (cached):
    the tutorial's simple-packaged-demo, and reg-dep-a (which bundles a dependency's wheel)."""
    import importlib

    _packaging_helpers()
    load_helper = importlib.import_module("tests.conftest").load_helper
    builder = load_helper("cloacina_tests_reg_archives", "reg-archives/archives.py")
    cache = getattr(request.config, "cache", None)
    where = cache.mkdir("cloacina-reg-archives") if cache is not None else tmp_path_factory.mktemp("reg-archives")
    demo = builder.archive(where, "demo", ROOT / "plugins" / "simple-packaged-demo")
    dep_a = builder.archive(where, "reg-dep-a", builder.PACKAGES / "reg-dep-a", find_links=builder.depmod_wheels(where))
    return {"demo": demo.read_bytes(), "dep-a": dep_a.read_bytes()}
