"""Discovery logic on small installed-layout distributions written into a temporary directory.

(The integration tests build real wheels with pypa build; these stay fast.)
"""

from __future__ import annotations

import itertools
import textwrap
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
from cloacina_host._discovery import CatalogEntry, WorkflowSource
from cloacina_workflow import Context, task, workflow

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
