"""Broken and conflicting plugins, as real installed distributions: each is reported, the others load."""

from __future__ import annotations

import sys
from pathlib import Path

import pluggy
import pytest

from cloacina_host import WorkflowConflictError, discover

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_imports")]

#: What loads from the zoo whatever is broken beside it.
LOADABLE = {
    "simple_demo::data_processing",
    "etl_toolkit::sales_rollup",
    "etl_toolkit::csv_cleanup",
    "inventory::inventory_check",  # the valid half of cloacina-test-not-a-workflow
}

#: distribution -> (entry point, exception type of the cause, fragments the report must contain)
BROKEN: dict[str, tuple[str, type[BaseException], tuple[str, ...]]] = {
    "cloacina-test-broken-import": (
        "broken_import",
        ModuleNotFoundError,
        (
            "failed to load",
            "broken_import = cloacina_test_broken_import:workflow",
            "ModuleNotFoundError",
            "cloacina_test_missing_dependency",
        ),
    ),
    "cloacina-test-raising-hook": (
        "raising_hook",
        RuntimeError,
        ("raised in cloacina_workflows()", "RuntimeError: inventory service unreachable at startup"),
    ),
    "cloacina-test-misspelt-hook": (
        "misspelt_hook",
        pluggy.PluginValidationError,
        ("failed to load", "PluginValidationError", "unknown hook 'cloacina_workflow'"),
    ),
    "cloacina-test-no-hooks": (
        "no_hooks",
        pluggy.PluginValidationError,
        ("failed to load", "cloacina_test_no_hooks is <module", "implements no Cloacina hook", "@hookimpl"),
    ),
    "cloacina-test-not-a-workflow": (
        "not_a_workflow",
        type(None),
        ("returned str 'nightly_export'", "not a Workflow"),
    ),
}


def test_every_other_plugin_still_loads(zoo_site: Path) -> None:
    catalog = discover(path=[str(zoo_site)])

    assert set(catalog.entries) == LOADABLE
    assert sorted(p.distribution for p in catalog.problems) == sorted(BROKEN)
    assert list(catalog.conflicts) == ["shared_reports::daily_report"]


@pytest.mark.parametrize("distribution", sorted(BROKEN))
def test_the_report_names_distribution_entry_point_and_error(zoo_site: Path, distribution: str) -> None:
    entry_point, cause, fragments = BROKEN[distribution]
    catalog = discover(path=[str(zoo_site)])

    [problem] = [p for p in catalog.problems if p.distribution == distribution]
    message = str(problem)
    assert problem.entry_point == entry_point
    assert f"{distribution}:{entry_point}" in message
    for fragment in fragments:
        assert fragment in message
    assert type(problem.__cause__) is cause
    # a plugin that failed to load is not left registered half-way
    if "failed to load" in fragments:
        assert not catalog.plugin_manager.has_plugin(f"{distribution}:{entry_point}")


def test_the_misspelt_hook_is_refused_by_check_pending(zoo_site: Path) -> None:
    catalog = discover(path=[str(zoo_site)])

    assert "misspelt::orphan" not in catalog.entries
    catalog.plugin_manager.check_pending()  # nothing unknown is left behind


def test_two_distributions_offering_one_workflow_conflict(zoo_site: Path) -> None:
    catalog = discover(path=[str(zoo_site)])

    sources = {entry.source.distribution for entry in catalog.conflicts["shared_reports::daily_report"]}
    assert sources == {"cloacina-test-duplicate-one", "cloacina-test-duplicate-two"}
    for name in ("daily_report", "shared_reports::daily_report", "public::shared_reports::daily_report"):
        with pytest.raises(WorkflowConflictError) as info:
            catalog.resolve(name)
        message = str(info.value)
        assert "cloacina-test-duplicate-one 0.1.0 (entry point 'daily_report')" in message
        assert "cloacina-test-duplicate-two 0.1.0 (entry point 'daily_report')" in message
        assert "--disable-plugin" in message


def test_blocking_one_duplicate_resolves_the_conflict(zoo_site: Path) -> None:
    catalog = discover(path=[str(zoo_site)], disabled=["cloacina-test-duplicate-two"])

    entry = catalog.resolve("daily_report")
    assert entry.source.distribution == "cloacina-test-duplicate-one"
    assert catalog.conflicts == {}
    assert "cloacina_test_duplicate_two" not in sys.modules


@pytest.mark.parametrize(
    ("how", "names"),
    [
        ("option", ["cloacina-test-broken-import", "raising_hook", "cloacina-test-misspelt-hook:misspelt_hook"]),
        ("option", ["Cloacina_Test.Broken_Import", "RAISING-HOOK", "cloacina_test_misspelt_hook:misspelt-hook"]),
        ("env", ["cloacina-test-broken-import", "raising_hook", "cloacina-test-misspelt-hook:misspelt_hook"]),
    ],
)
def test_blocked_plugins_are_not_even_imported(
    zoo_site: Path, monkeypatch: pytest.MonkeyPatch, how: str, names: list[str]
) -> None:
    if how == "env":
        monkeypatch.setenv("CLOACINA_DISABLE_PLUGINS", " , ".join(names))
        catalog = discover(path=[str(zoo_site)])
    else:
        monkeypatch.delenv("CLOACINA_DISABLE_PLUGINS", raising=False)
        catalog = discover(path=[str(zoo_site)], disabled=names)

    blocked = {
        "cloacina-test-broken-import": "cloacina_test_broken_import",
        "cloacina-test-raising-hook": "cloacina_test_raising_hook",
        "cloacina-test-misspelt-hook": "cloacina_test_misspelt_hook",
    }
    assert {p.distribution for p in catalog.problems} == {"cloacina-test-no-hooks", "cloacina-test-not-a-workflow"}
    for distribution, module in blocked.items():
        assert module not in sys.modules, f"{distribution} was imported although blocked"
        [entry_point] = [ep for d, (ep, _, _) in BROKEN.items() if d == distribution]
        assert catalog.plugin_manager.is_blocked(f"{distribution}:{entry_point}")
    assert set(catalog.entries) == LOADABLE
