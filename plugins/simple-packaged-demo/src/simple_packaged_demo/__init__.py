"""
# Simple Packaged Workflow Demo

This example demonstrates the complete end-to-end lifecycle of packaged workflows:

1. **Define** - Create a packaged workflow with tasks
2. **Build** - Build a wheel (``python -m build``)
3. **Package** - Create .cloacina archive (``cloacina-ctl package . -o simple-demo.cloacina``)
4. **Load** - Dynamically load via registry (or ``pip install`` it next to the host)
5. **Execute** - Run tasks through scheduler (``cloacina-ctl run data_processing``)

While the package is active (registered, or pip-installed beside the host), ``cloacina-ctl serve``
also runs the workflow on its schedule: every Monday at 06:00, London time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from cloacina_workflow import Context, Schedule, TaskError, task, workflow

__all__ = ["data_processing"]


@workflow(
    name="data_processing",
    package="simple_demo",
    description="Simple data processing workflow for demonstration",
    author="Cloacina Demo Team",
    schedules=[Schedule("0 6 * * 1", timezone="Europe/London", name="weekly")],
)
class data_processing:
    """Simple Data Processing Workflow

    A minimal workflow that demonstrates the complete workflow package lifecycle
    with data processing, validation, and reporting.
    """

    @task(id="collect_data", dependencies=[], retry_attempts=2)
    async def collect_data(context: Context) -> None:
        """Step 1: Collect input data"""
        print("🔍 Collecting data...")

        # Simulate data collection
        await asyncio.sleep(0.100)

        data = {
            "records": 1000,
            "source": "demo_database",
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }

        context.insert("raw_data", data)
        print("✅ Collected 1000 records")

    @task(id="process_data", dependencies=["collect_data"], retry_attempts=3)
    async def process_data(context: Context) -> None:
        """Step 2: Process the collected data"""
        print("⚙️ Processing data...")

        # Get input data
        raw_data = context.get("raw_data")
        if raw_data is None:
            raise TaskError.ValidationFailed(message="Missing raw_data")

        # Simulate processing
        await asyncio.sleep(0.200)

        processed = {
            "processed_records": 950,  # Some records filtered out
            "original_count": raw_data["records"],
            "processing_time_ms": 200,
            "status": "completed",
        }

        context.insert("processed_data", processed)
        print("✅ Processed 950 valid records")

    @task(id="generate_report", dependencies=["process_data"], retry_attempts=1)
    async def generate_report(context: Context) -> None:
        """Step 3: Generate summary report"""
        print("📊 Generating report...")

        # Get processed data
        processed_data = context.get("processed_data")
        if processed_data is None:
            raise TaskError.ValidationFailed(message="Missing processed_data")

        # Simulate report generation
        await asyncio.sleep(0.150)

        now = datetime.now(timezone.utc)
        report = {
            "report_id": f"RPT_{int(now.timestamp())}",
            "summary": {
                "total_processed": processed_data["processed_records"],
                "success_rate": "95%",
                "processing_time": processed_data["processing_time_ms"],
            },
            "generated_at": now.isoformat(),
        }

        context.insert("final_report", report)
        print("✅ Report generated successfully")
