"""Discovery logic on small installed-layout distributions written into a temporary directory.

(The integration tests build real wheels with pypa build; these stay fast.)
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import textwrap
import threading
import types
from pathlib import Path

import pytest

from cloacina_host import (
    AmbiguousWorkflowError,
    WorkflowCatalog,
    WorkflowConflictError,
    WorkflowNotFoundError,
    discover,
    make_plugin_manager,
)
from cloacina_host._discovery import (
    CatalogEntry,
    WorkflowSource,
    discover_async,
    installed_entry_points,
    invalidate_entry_point_cache,
)
from cloacina_workflow import Context, hookimpl, task, workflow

_counter = itertools.count()

WORKFLOW_MODULE = """
from cloacina_workflow import task, workflow

@workflow(name={name!r}{package})
class wf:
    @task(id="only")
    def only(context):
        context.insert("ran", {name!r})
"""


def install_fake(site: Path, dist: str, module_source: str, entry_points: dict[str, str]) -> str:
    """Write an installed distribution (dist-info + one module) into ``site``; return the module name."""
    module = f"fake_{dist.replace('-', '_')}_{next(_counter)}"
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = "\n".join(
        f"{name} = {module}:{attr}" if ":" not in attr else f"{name} = {attr}" for name, attr in entry_points.items()
    )
    (info / "entry_points.txt").write_text(f"[cloacina.workflows]\n{lines}\n")
    return module


def simple_plugin(site: Path, dist: str, name: str, package: str | None = None) -> str:
    pkg = f", package={package!r}" if package else ""
    return install_fake(site, dist, WORKFLOW_MODULE.format(name=name, package=pkg), {name: "wf"})


def test_plugin_manager_factory_gives_fresh_managers_with_the_specs() -> None:
    a, b = make_plugin_manager(), make_plugin_manager()
    assert a is not b
    assert a.project_name == "cloacina"
    assert hasattr(a.hook, "cloacina_workflows")
    assert hasattr(a.hook, "cloacina_task_finished")


def test_the_plugin_manager_finds_hook_implementations_as_pluggy_does() -> None:
    calls: list[str] = []

    class Observer:
        @hookimpl
        def cloacina_task_finished(self, task_id: str) -> None:
            calls.append(f"class:{task_id}")

        def cloacina_task_started(self, task_id: str) -> None:
            calls.append("unmarked")  # not a hook implementation: no marker

        @property
        def cloacina_execution_started(self) -> None:
            raise AssertionError("a property is never evaluated while registering")

    @hookimpl
    def started(task_id: str) -> None:
        calls.append(f"instance:{task_id}")

    pm = make_plugin_manager()
    first, second = Observer(), Observer()
    second.cloacina_task_started = started  # type: ignore[method-assign]  # an instance's own attribute
    pm.register(first)
    pm.register(second)
    pm.check_pending()
    finished = {"status": "completed", "attempts": 1, "duration_s": 0.1, "error": None}
    pm.hook.cloacina_task_finished(execution_id="e", workflow="w", task_id="t", **finished)
    pm.hook.cloacina_task_started(execution_id="e", workflow="w", task_id="s", attempt=1)
    assert calls == ["class:t", "class:t", "instance:s"]
    assert pm.get_hookcallers(first) == [pm.hook.cloacina_task_finished]


def test_discovers_workflow_objects_with_their_source(tmp_path: Path) -> None:
    simple_plugin(tmp_path, "alpha-dist", "alpha", package="alpha_pkg")
    simple_plugin(tmp_path, "beta-dist", "beta")
    catalog = discover(path=[str(tmp_path)])
    assert sorted(catalog.entries) == ["alpha_pkg::alpha", "beta_dist::beta"]
    entry = catalog.resolve("alpha")
    assert entry.source == WorkflowSource("installed", "alpha-dist", "1.2.3", "alpha")
    assert entry.namespace() == "public::alpha_pkg::alpha"
    assert catalog.problems == []
    assert catalog.plugin_manager.has_plugin("alpha-dist:alpha")


def test_module_with_hookimpl_offers_several_workflows(tmp_path: Path) -> None:
    source = """
    from cloacina_workflow import hookimpl, task, workflow

    @workflow(name="one", package="multi")
    class one:
        @task
        def a(context): ...

    @workflow(name="two", package="multi")
    class two:
        @task
        def b(context): ...

    @hookimpl
    def cloacina_workflows():
        return [one, two]
    """
    module = install_fake(tmp_path, "multi-dist", source, {"all": "placeholder"})
    # point the entry point at the module itself
    ep_file = next(tmp_path.glob("multi_dist-*.dist-info")) / "entry_points.txt"
    ep_file.write_text(f"[cloacina.workflows]\nall = {module}\n")
    catalog = discover(path=[str(tmp_path)])
    assert sorted(catalog.entries) == ["multi::one", "multi::two"]


def test_a_broken_plugin_is_reported_and_the_others_still_load(tmp_path: Path) -> None:
    simple_plugin(tmp_path, "good-dist", "good")
    install_fake(tmp_path, "bad-dist", "raise ImportError('needs libfoo')\n", {"bad": "wf"})
    catalog = discover(path=[str(tmp_path)])
    assert list(catalog.entries) == ["good_dist::good"]
    [problem] = catalog.problems
    assert (problem.distribution, problem.entry_point) == ("bad-dist", "bad")
    assert "needs libfoo" in str(problem)
    assert "bad-dist 1.2.3" in str(problem)
    assert isinstance(problem.__cause__, ImportError)


def test_blocked_plugin_is_never_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    install_fake(tmp_path, "noisy-dist", f"open({str(marker)!r}, 'w').close()\nwf = None\n", {"noisy": "wf"})
    catalog = discover(path=[str(tmp_path)], disabled=["Noisy_Dist"])
    assert not marker.exists()
    assert catalog.problems == []
    assert catalog.plugin_manager.is_blocked("noisy-dist:noisy")


def test_blocked_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake(tmp_path, "env-dist", "raise RuntimeError('should not load')\n", {"envwf": "wf"})
    monkeypatch.setenv("CLOACINA_DISABLE_PLUGINS", "other, env-dist:envwf")
    assert discover(path=[str(tmp_path)]).problems == []


def test_same_package_and_workflow_from_two_distributions_is_a_conflict(tmp_path: Path) -> None:
    simple_plugin(tmp_path, "first-dist", "report", package="shared")
    simple_plugin(tmp_path, "second-dist", "report", package="shared")
    catalog = discover(path=[str(tmp_path)])
    assert "shared::report" not in catalog.entries
    with pytest.raises(WorkflowConflictError) as info:
        catalog.resolve("report")
    assert "first-dist 1.2.3" in str(info.value)
    assert "second-dist 1.2.3" in str(info.value)
    assert "--disable-plugin" in str(info.value)


def _embedded(name: str, package: str | None = None) -> CatalogEntry:
    @workflow(name=name, package=package)
    class wf:
        @task
        def t(context: Context) -> None: ...

    catalog = WorkflowCatalog()
    return catalog.add_workflow(wf)


def test_resolve_accepts_bare_qualified_and_namespaced_names() -> None:
    catalog = WorkflowCatalog()
    for name, package in [("daily", "sales"), ("daily", "ops"), ("weekly", None)]:
        catalog.add(_embedded(name, package))
    assert catalog.resolve("weekly").key == "embedded::weekly"
    assert catalog.resolve("sales::daily").package == "sales"
    assert catalog.resolve("acme::ops::daily").package == "ops"
    with pytest.raises(AmbiguousWorkflowError) as ambiguous:
        catalog.resolve("daily")
    assert ambiguous.value.candidates == ["ops::daily", "sales::daily"]
    with pytest.raises(WorkflowNotFoundError) as missing:
        catalog.resolve("monthly")
    assert missing.value.exit_status == 3
    assert missing.value.known == ["embedded::weekly", "ops::daily", "sales::daily"]


# -- the scan of installed distributions: once per process and search path, until invalidated ----------


def test_a_second_discovery_reuses_the_scan_until_it_is_invalidated(tmp_path: Path) -> None:
    simple_plugin(tmp_path, "early-dist", "early")
    first = discover(path=[str(tmp_path)])
    assert list(first.entries) == ["early_dist::early"]
    simple_plugin(tmp_path, "late-dist", "late")  # installed after the first scan
    second = discover(path=[str(tmp_path)])
    assert second.plugin_manager is not first.plugin_manager  # a fresh manager each time...
    assert second.plugin_manager.has_plugin("early-dist:early")
    assert list(second.entries) == ["early_dist::early"]  # ...over the scan read the first time
    refreshed = discover(path=[str(tmp_path)], refresh=True)
    assert sorted(refreshed.entries) == ["early_dist::early", "late_dist::late"]
    simple_plugin(tmp_path, "later-dist", "later")
    assert "later_dist::later" not in discover(path=[str(tmp_path)]).entries
    invalidate_entry_point_cache()
    assert sorted(discover(path=[str(tmp_path)]).entries) == [
        "early_dist::early",
        "late_dist::late",
        "later_dist::later",
    ]


def test_each_search_path_is_scanned_on_its_own(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    simple_plugin(one, "one-dist", "uno")
    assert [ep.distribution for ep in installed_entry_points([str(one)])] == ["one-dist"]
    simple_plugin(two, "two-dist", "dos")  # a path not scanned yet is read when first asked
    assert [ep.distribution for ep in installed_entry_points([str(two)])] == ["two-dist"]
    assert installed_entry_points([str(one), str(two)]) == (
        *installed_entry_points([str(one)]),
        *installed_entry_points([str(two)]),
    )


def test_default_search_is_sys_path_as_it_is_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    simple_plugin(tmp_path, "syspath-dist", "on_syspath")
    assert "syspath_dist::on_syspath" in discover().entries
    simple_plugin(tmp_path, "syspath-late-dist", "late_on_syspath")
    assert "syspath_late_dist::late_on_syspath" not in discover().entries
    invalidate_entry_point_cache()
    assert "syspath_late_dist::late_on_syspath" in discover().entries


# -- metadata edge cases that the standard library's importlib.metadata treats differently by version --


def test_a_distribution_without_a_metadata_file_or_name_is_skipped(tmp_path: Path) -> None:
    simple_plugin(tmp_path, "sound-dist", "sound")
    no_metadata = tmp_path / "ghost-1.0.dist-info"  # 3.10-3.12: an empty Message; 8.7: None; 9+: raises
    no_metadata.mkdir()
    (no_metadata / "entry_points.txt").write_text("[cloacina.workflows]\nghost = nowhere:wf\n")
    no_name = tmp_path / "nameless-1.0.dist-info"  # stdlib 3.12+ warns about the missing key, 8+ raises
    no_name.mkdir()
    (no_name / "METADATA").write_text("Metadata-Version: 2.1\nVersion: 1.0\n")
    (no_name / "entry_points.txt").write_text("[cloacina.workflows]\nnameless = nowhere:wf\n")
    catalog = discover(path=[str(tmp_path)])
    assert list(catalog.entries) == ["sound_dist::sound"]
    assert catalog.problems == []


def test_a_distribution_shadowed_on_the_path_is_not_loaded(tmp_path: Path) -> None:
    front, back = tmp_path / "front", tmp_path / "back"
    front.mkdir()
    back.mkdir()
    simple_plugin(front, "shadowed-dist", "front_flow")
    simple_plugin(back, "Shadowed_Dist", "back_flow")  # the same distribution, spelt otherwise, later on the path
    catalog = discover(path=[str(front), str(back)])
    assert list(catalog.entries) == ["shadowed_dist::front_flow"]
    assert catalog.problems == []
    assert [(ep.distribution, ep.version, ep.name) for ep in installed_entry_points([str(front), str(back)])] == [
        ("shadowed-dist", "1.2.3", "front_flow")
    ]


def test_a_distribution_without_plugins_still_shadows_one_of_its_name_later_on_the_path(tmp_path: Path) -> None:
    front, back = tmp_path / "front", tmp_path / "back"
    front.mkdir()
    back.mkdir()
    newer = front / "upgraded_dist-2.0.dist-info"  # version 2.0 dropped its entry point
    newer.mkdir()
    (newer / "METADATA").write_text("Metadata-Version: 2.1\nName: upgraded-dist\nVersion: 2.0\n")
    stale = front / "upgraded_dist-0.1.dist-info"  # a broken leftover without METADATA shadows nothing
    simple_plugin(back, "upgraded-dist", "old_flow")
    assert discover(path=[str(front), str(back)]).entries == {}
    assert sorted(discover(path=[str(back)]).entries) == ["upgraded_dist::old_flow"]
    stale.mkdir()
    (stale / "entry_points.txt").write_text("[cloacina.workflows]\nghost = nowhere:wf\n")
    (newer / "METADATA").unlink()
    assert sorted(discover(path=[str(front), str(back)], refresh=True).entries) == ["upgraded_dist::old_flow"]


def test_a_version_less_distribution_still_loads(tmp_path: Path) -> None:
    simple_plugin(tmp_path, "unversioned-dist", "unversioned")
    info = next(tmp_path.glob("unversioned_dist-*.dist-info"))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unversioned-dist\n")
    entry = discover(path=[str(tmp_path)]).resolve("unversioned")
    assert entry.source == WorkflowSource("installed", "unversioned-dist", None, "unversioned")


# -- off the event loop ------------------------------------------------------------------------------

GATED_MODULE = """
import asyncio
import sys

gate = sys.modules["cloacina_test_discovery_gate"]
gate.opened = gate.event.wait(10)  # set by the event loop: only reachable if the loop is free meanwhile
try:
    asyncio.get_running_loop()
    gate.on_loop = True
except RuntimeError:
    gate.on_loop = False
"""


async def test_discover_async_imports_plugins_while_the_loop_runs_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = types.ModuleType("cloacina_test_discovery_gate")
    gate.event = threading.Event()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, gate.__name__, gate)
    install_fake(
        tmp_path, "gated-dist", GATED_MODULE + WORKFLOW_MODULE.format(name="gated", package=""), {"gated": "wf"}
    )
    discovering = asyncio.ensure_future(discover_async(path=[str(tmp_path)]))
    asyncio.get_running_loop().call_soon(gate.event.set)  # runs only if discovery leaves the loop
    catalog = await asyncio.wait_for(discovering, timeout=30)
    assert gate.opened is True
    assert gate.on_loop is False
    assert list(catalog.entries) == ["gated_dist::gated"]
