"""The reference package's own tests: the tutorial's ``test_workflow_execution`` and a full in-memory run."""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import distribution
from typing import Any

import pytest
from simple_packaged_demo import data_processing

from cloacina_workflow import Context, TaskError, Workflow, task
from cloacina_workflow.testing import RunResult

PROGRESS = [
    "🔍 Collecting data...",
    "✅ Collected 1000 records",
    "⚙️ Processing data...",
    "✅ Processed 950 valid records",
    "📊 Generating report...",
    "✅ Report generated successfully",
]


@pytest.mark.asyncio
async def test_workflow_execution() -> None:
    context = Context()

    # Execute workflow steps in order
    await data_processing.collect_data(context)
    await data_processing.process_data(context)
    await data_processing.generate_report(context)

    # Verify final state
    report = context.get("final_report")
    assert report["report_id"].startswith("RPT_")
    assert report["summary"]["total_processed"] == 950


def test_definition_matches_the_tutorial() -> None:
    assert isinstance(data_processing, Workflow)
    assert data_processing.namespace() == "public::simple_demo::data_processing"
    assert data_processing.description == "Simple data processing workflow for demonstration"
    assert data_processing.author == "Cloacina Demo Team"
    assert data_processing.order == ("collect_data", "process_data", "generate_report")
    specs = {tid: (t.dependencies, t.retry.attempts) for tid, t in data_processing.tasks.items()}
    assert specs == {
        "collect_data": ((), 2),
        "process_data": (("collect_data",), 3),
        "generate_report": (("process_data",), 1),
    }
    assert data_processing.process_data.spec.docstring == "Step 2: Process the collected data"


def test_full_run_in_memory(cloacina_runner: Any, capsys: pytest.CaptureFixture[str]) -> None:
    result: RunResult = cloacina_runner.run(data_processing)

    assert result.ok, result.tasks
    assert {tid: (o.status, o.attempts) for tid, o in result.tasks.items()} == {
        "collect_data": ("completed", 1),
        "process_data": ("completed", 1),
        "generate_report": ("completed", 1),
    }
    assert capsys.readouterr().out.splitlines() == PROGRESS

    final = result.context.to_dict()
    raw = final["raw_data"]
    assert raw["records"] == 1000
    assert raw["source"] == "demo_database"
    assert datetime.fromisoformat(raw["timestamp"]).utcoffset() is not None  # ISO 8601 with a UTC offset
    assert final["processed_data"] == {
        "processed_records": 950,
        "original_count": 1000,
        "processing_time_ms": 200,
        "status": "completed",
    }
    report = final["final_report"]
    assert report["summary"] == {"total_processed": 950, "success_rate": "95%", "processing_time": 200}
    generated_at = datetime.fromisoformat(report["generated_at"])
    assert report["report_id"] == f"RPT_{int(generated_at.timestamp())}"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("task_id", "given", "message"),
    [
        ("process_data", {}, "Missing raw_data"),
        ("generate_report", {"raw_data": {"records": 1000}}, "Missing processed_data"),
    ],
)
async def test_missing_input_fails_validation(task_id: str, given: dict[str, object], message: str) -> None:
    context = Context(given)
    with pytest.raises(TaskError.ValidationFailed) as info:
        await data_processing.task(task_id)(context)
    assert info.value.message == message
    assert context == given  # nothing written


def test_a_failed_step_skips_the_rest_of_the_pipeline(cloacina_runner: Any) -> None:
    # The pipeline without its first step: process_data finds no raw_data.
    process_data = task(id="process_data", retry_attempts=3)(data_processing.process_data.function)
    partial = Workflow("from_processing", [process_data, data_processing.generate_report], package="simple_demo")
    result: RunResult = cloacina_runner.run(partial)
    assert result.status == "failed"
    failed = result.tasks["process_data"]
    assert failed.status == "failed"
    assert failed.attempts == 4  # retry_attempts=3: the first run and three retries
    assert failed.error is not None
    assert "Missing raw_data" in failed.error
    assert result.tasks["generate_report"].status == "skipped"
    assert "final_report" not in result.context


def test_the_distribution_declares_the_entry_point() -> None:
    dist = distribution("simple-packaged-demo")
    assert dist.version == "1.0.0"
    [ep] = [ep for ep in dist.entry_points if ep.group == "cloacina.workflows"]
    assert (ep.name, ep.value) == ("data_processing", "simple_packaged_demo:data_processing")
    assert ep.load() is data_processing
    assert any(req.startswith("cloacina-workflow") for req in dist.requires or [])
