"""``cloacina-ctl`` with real plugins, as a user types it: the installed console script in a subprocess.

The plugins and the broken test packages are built into wheels with pypa build and installed with
installer into a directory that the subprocess gets on ``PYTHONPATH``, as ``pip install --target``
would leave them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

PROGRESS = [
    "🔍 Collecting data...",
    "✅ Collected 1000 records",
    "⚙️ Processing data...",
    "✅ Processed 950 valid records",
    "📊 Generating report...",
    "✅ Report generated successfully",
]
REAL = ["etl_toolkit::csv_cleanup", "etl_toolkit::sales_rollup", "simple_demo::data_processing"]
LOADABLE = sorted([*REAL, "inventory::inventory_check"])
#: the broken test distributions and their entry points
BROKEN = {
    "cloacina-test-broken-import": "broken_import",
    "cloacina-test-misspelt-hook": "misspelt_hook",
    "cloacina-test-no-hooks": "no_hooks",
    "cloacina-test-not-a-workflow": "not_a_workflow",
    "cloacina-test-raising-hook": "raising_hook",
}
DUPLICATES = ["cloacina-test-duplicate-one", "cloacina-test-duplicate-two"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "cloacina-home"


def ctl(*args: str, site: Path, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``cloacina-ctl`` with ``site`` on PYTHONPATH and a private Cloacina home."""
    script = shutil.which("cloacina-ctl", path=str(Path(sys.executable).parent))
    assert script is not None, "the cloacina-ctl console script is not installed next to this interpreter"
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "CLOACINA_DISABLE_PLUGINS", "CLOACINA_DATABASE_URL", "CLOACINA_HOME"}
    }
    environ.update({"PYTHONPATH": str(site), "CLOACINA_HOME": str(home), **(env or {})})
    return subprocess.run(
        [script, *args], capture_output=True, text=True, encoding="utf-8", env=environ, timeout=120, check=False
    )


def final_json(stdout: str) -> dict[str, Any]:
    """The last JSON object in ``stdout`` (task progress lines may come before it)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    offset = 0
    for line in stdout.splitlines(keepends=True):
        if line.startswith("{"):
            try:
                value, _ = decoder.raw_decode(stdout, offset)
            except json.JSONDecodeError:
                pass
            else:
                if isinstance(value, dict):
                    found.append(value)
        offset += len(line)
    assert found, f"no JSON object in the output:\n{stdout}"
    return found[-1]


def in_order(lines: list[str], expected: list[str]) -> bool:
    """Whether ``expected`` appear in ``lines`` in this order (other lines may come between)."""
    remaining = iter(lines)
    return all(any(line.strip() == want for line in remaining) for want in expected)


def test_workflows_list_json_shows_the_installed_plugins(plugin_site: Path, home: Path) -> None:
    proc = ctl("workflows", "list", "--json", site=plugin_site, home=home)

    assert proc.returncode == 0, proc.stderr
    data = final_json(proc.stdout)
    assert data["problems"] == []
    by_namespace = {wf["namespace"]: wf for wf in data["workflows"]}
    assert sorted(by_namespace) == [f"public::{key}" for key in REAL]
    demo = by_namespace["public::simple_demo::data_processing"]
    assert demo["description"] == "Simple data processing workflow for demonstration"
    assert demo["author"] == "Cloacina Demo Team"
    assert demo["tasks"] == ["collect_data", "process_data", "generate_report"]
    assert demo["source"] == {
        "kind": "installed",
        "distribution": "simple-packaged-demo",
        "version": "1.0.0",
        "entry_point": "data_processing",
    }
    rollup = by_namespace["public::etl_toolkit::sales_rollup"]
    assert rollup["source"]["distribution"] == "etl-toolkit"
    assert rollup["source"]["entry_point"] == "etl_toolkit"
    assert rollup["task_count"] == 4


def test_run_data_processing_prints_the_tutorial_progress(plugin_site: Path, home: Path) -> None:
    proc = ctl("run", "data_processing", site=plugin_site, home=home)

    assert proc.returncode == 0, proc.stderr
    assert in_order(proc.stderr.splitlines(), PROGRESS), proc.stderr  # what tasks print goes to stderr
    assert json.loads(proc.stdout)["final_report"]["report_id"].startswith("RPT_")  # stdout: the result only
    assert "Traceback" not in proc.stderr


def test_run_json_gives_the_final_context(zoo_site: Path, home: Path) -> None:
    # the broken plugins installed beside it do not stop the demo from running
    proc = ctl("run", "simple_demo::data_processing", "--json", site=zoo_site, home=home)

    assert proc.returncode == 0, proc.stderr
    context = json.loads(proc.stdout)["context"]  # nothing but the result on stdout
    assert context["raw_data"]["records"] == 1000
    assert context["raw_data"]["source"] == "demo_database"
    assert context["processed_data"] == {
        "processed_records": 950,
        "original_count": 1000,
        "processing_time_ms": 200,
        "status": "completed",
    }
    report = context["final_report"]
    assert report["report_id"].startswith("RPT_")
    assert report["summary"] == {"total_processed": 950, "success_rate": "95%", "processing_time": 200}
    assert in_order(proc.stderr.splitlines(), PROGRESS)


def test_run_a_fan_out_workflow_with_a_context_file(plugin_site: Path, home: Path, tmp_path: Path) -> None:
    orders = [
        {"id": "a", "region": "west", "product": "bolt", "amount_cents": 300},
        {"id": "b", "region": "east", "product": "nut", "amount_cents": 200},
    ]
    context_file = tmp_path / "orders.json"
    context_file.write_text(json.dumps({"orders": orders}), encoding="utf-8")

    proc = ctl("run", "sales_rollup", "--context", f"@{context_file}", "--json", site=plugin_site, home=home)

    assert proc.returncode == 0, proc.stderr
    context = json.loads(proc.stdout)["context"]  # nothing but the result on stdout
    assert context["region_totals"] == {"east": 200, "west": 300}
    assert context["product_totals"] == {"bolt": 300, "nut": 200}
    assert context["sales_summary"] == {
        "orders": 2,
        "revenue_cents": 500,
        "top_region": "west",
        "top_product": "bolt",
    }


def test_broken_plugins_are_reported_and_the_rest_listed(zoo_site: Path, home: Path) -> None:
    proc = ctl("workflows", "list", site=zoo_site, home=home)

    assert proc.returncode == 0, proc.stderr
    for key in LOADABLE:
        assert f"public::{key}" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == len(proc.stderr.splitlines()) == len(BROKEN) + 1, proc.stderr  # each said once
    for distribution, entry_point in BROKEN.items():
        [warning] = [w for w in warnings if f"{distribution}:{entry_point}" in w]
        assert "Error" in warning or "not a Workflow" in warning, warning
    assert any("cloacina_test_missing_dependency" in w for w in warnings)
    assert any("inventory service unreachable at startup" in w for w in warnings)
    assert any("unknown hook 'cloacina_workflow'" in w for w in warnings)
    assert any("implements no Cloacina hook" in w for w in warnings)
    [conflict] = [w for w in warnings if "shared_reports::daily_report" in w]
    assert all(d in conflict for d in DUPLICATES)
    assert "Traceback" not in proc.stderr


def test_broken_plugins_in_json(zoo_site: Path, home: Path) -> None:
    proc = ctl("workflows", "list", "--json", site=zoo_site, home=home)

    assert proc.returncode == 0, proc.stderr
    data = final_json(proc.stdout)
    assert sorted(wf["namespace"].removeprefix("public::") for wf in data["workflows"]) == LOADABLE
    loads = {(p["distribution"], p["entry_point"]): p["message"] for p in data["problems"] if p["kind"] == "load"}
    assert sorted(loads) == sorted(BROKEN.items())
    assert "ModuleNotFoundError" in loads["cloacina-test-broken-import", "broken_import"]
    [conflict] = [p for p in data["problems"] if p["kind"] == "conflict"]
    assert conflict["workflow"] == "shared_reports::daily_report"
    assert sorted(source.split()[1] for source in conflict["sources"]) == DUPLICATES


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        pytest.param(
            ["-p", "cloacina-test-broken-import", "--disable-plugin", "raising_hook", "workflows", "list", "--json"],
            {},
            id="options-before-the-command",
        ),
        pytest.param(
            ["workflows", "list", "--json", "-p", "no:cloacina_test_broken_import", "-p", "raising-hook"],
            {},
            id="options-after-the-command",
        ),
        pytest.param(
            ["workflows", "list", "--json"],
            {"CLOACINA_DISABLE_PLUGINS": "cloacina-test-broken-import, cloacina-test-raising-hook:raising_hook"},
            id="environment",
        ),
    ],
)
def test_blocked_plugins_are_not_loaded(zoo_site: Path, home: Path, argv: list[str], env: dict[str, str]) -> None:
    proc = ctl(*argv, site=zoo_site, home=home, env=env)

    assert proc.returncode == 0, proc.stderr
    data = final_json(proc.stdout)
    reported = {p.get("distribution") for p in data["problems"] if p["kind"] == "load"}
    # the import error would be reported had the module been imported
    assert reported == {"cloacina-test-misspelt-hook", "cloacina-test-no-hooks", "cloacina-test-not-a-workflow"}
    assert sorted(wf["namespace"].removeprefix("public::") for wf in data["workflows"]) == LOADABLE


def test_a_conflict_names_both_distributions_until_one_is_blocked(zoo_site: Path, home: Path) -> None:
    proc = ctl("run", "daily_report", site=zoo_site, home=home)

    assert proc.returncode == 1
    assert proc.stderr.startswith("error: Workflow 'shared_reports::daily_report' is offered by more than one source")
    for distribution in DUPLICATES:
        assert f"{distribution} 0.1.0 (entry point 'daily_report')" in proc.stderr
    assert "--disable-plugin" in proc.stderr

    proc = ctl("-p", "cloacina-test-duplicate-two", "run", "daily_report", "--json", site=zoo_site, home=home)
    assert proc.returncode == 0, proc.stderr
    assert final_json(proc.stdout)["context"] == {"written_by": "cloacina-test-duplicate-one"}


def test_run_of_an_unknown_workflow_exits_3_and_lists_the_known_ones(zoo_site: Path, home: Path) -> None:
    proc = ctl("run", "data_procesing", site=zoo_site, home=home)

    assert proc.returncode == 3
    assert proc.stderr.startswith("error: No workflow named 'data_procesing'.")
    known = proc.stderr.split("Known workflows: ", 1)[1].split(". ", 1)[0].split(", ")
    assert known == sorted([*LOADABLE, "shared_reports::daily_report"])
    # the workflow may live in a plugin that failed to load: say which ones did
    failed = proc.stderr.split("Plugins that failed to load (it may be in one of them): ", 1)[1].split(". ", 1)[0]
    assert failed.split(", ") == [f"{d}:{ep}" for d, ep in sorted(BROKEN.items())]
    assert "Traceback" not in proc.stderr


def test_invalid_context_json_exits_1_with_the_position(plugin_site: Path, home: Path) -> None:
    proc = ctl("run", "data_processing", "--context", '{"records": oops}', site=plugin_site, home=home)

    assert proc.returncode == 1
    assert "Invalid JSON in --context at line 1, column 13 (char 12)" in proc.stderr
    assert "Collecting data" not in proc.stdout  # nothing ran
    assert "Traceback" not in proc.stderr
