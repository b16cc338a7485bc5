"""One of two distributions offering the same ``shared_reports::daily_report``."""

from __future__ import annotations

from cloacina_workflow import Context, task, workflow


@workflow(name="daily_report", package="shared_reports", description="Daily report (from duplicate-one)")
class daily_report:
    @task(id="write")
    def write(context: Context) -> None:
        context.insert("written_by", "cloacina-test-duplicate-one")
