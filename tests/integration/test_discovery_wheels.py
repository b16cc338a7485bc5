"""The real plugins, built into wheels with pypa build and installed with installer, found by discovery."""

from __future__ import annotations

import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from cloacina_host import WorkflowSource, discover
from cloacina_workflow.testing import run_workflow

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_imports")]

REAL_WORKFLOWS = {
    "simple_demo::data_processing": WorkflowSource("installed", "simple-packaged-demo", "1.0.0", "data_processing"),
    "etl_toolkit::sales_rollup": WorkflowSource("installed", "etl-toolkit", "0.1.0", "etl_toolkit"),
    "etl_toolkit::csv_cleanup": WorkflowSource("installed", "etl-toolkit", "0.1.0", "etl_toolkit"),
}


def test_the_demo_wheel_carries_the_tutorial_metadata(wheels: dict[str, Path]) -> None:
    wheel = wheels["simple-packaged-demo"]
    assert wheel.name == "simple_packaged_demo-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = Parser().parsestr(archive.read("simple_packaged_demo-1.0.0.dist-info/METADATA").decode())
        entry_points = archive.read("simple_packaged_demo-1.0.0.dist-info/entry_points.txt").decode()
    assert {"simple_packaged_demo/__init__.py", "simple_packaged_demo/py.typed"} <= names
    assert not any(name.startswith(("tests/", "src/")) for name in names)
    assert meta["Name"] == "simple-packaged-demo"
    assert meta["Version"] == "1.0.0"
    assert [req for req in meta.get_all("Requires-Dist", []) if req.startswith("cloacina")] == [
        "cloacina-workflow>=0.1"
    ]
    assert "[cloacina.workflows]\ndata_processing = simple_packaged_demo:data_processing" in entry_points


def test_installed_plugins_are_discovered_from_their_metadata(plugin_site: Path) -> None:
    catalog = discover(path=[str(plugin_site)])

    assert catalog.problems == []
    assert catalog.conflicts == {}
    assert {key: entry.source for key, entry in catalog.entries.items()} == REAL_WORKFLOWS
    # the code comes from the target directory, registered under "<distribution>:<entry point>"
    module = catalog.plugin_manager.get_plugin("etl-toolkit:etl_toolkit")
    assert Path(module.__file__).is_relative_to(plugin_site)
    assert catalog.plugin_manager.get_plugin("simple-packaged-demo:data_processing") is (
        catalog.entries["simple_demo::data_processing"].workflow
    )
    demo = catalog.resolve("data_processing").workflow
    assert demo.description == "Simple data processing workflow for demonstration"
    assert demo.author == "Cloacina Demo Team"
    assert demo.order == ("collect_data", "process_data", "generate_report")
    # the installer recorded what it wrote
    info = plugin_site / "simple_packaged_demo-1.0.0.dist-info"
    assert (info / "INSTALLER").read_text() == "cloacina-tests\n"
    assert "simple_packaged_demo/__init__.py" in (info / "RECORD").read_text()


def test_discovered_workflows_run(plugin_site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = discover(path=[str(plugin_site)])

    demo = run_workflow(catalog.resolve("simple_demo::data_processing").workflow)
    assert demo.ok, demo.tasks
    assert demo.context.get("final_report")["summary"]["total_processed"] == 950
    assert "✅ Report generated successfully" in capsys.readouterr().out

    rollup = run_workflow(catalog.resolve("public::etl_toolkit::sales_rollup").workflow)
    assert rollup.ok, rollup.tasks
    assert set(rollup.context.get("sales_summary")) == {"orders", "revenue_cents", "top_region", "top_product"}
