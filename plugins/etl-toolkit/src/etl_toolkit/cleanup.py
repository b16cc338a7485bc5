"""``csv_cleanup``: parse CSV text from the context, drop the rows that are invalid, normalise the rest.

A conditional branch: ``quarantine_rejects`` runs only when the context asks for it (``quarantine`` is
``true``); otherwise it is skipped with the reason, and the rest of the workflow runs as usual.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from cloacina_workflow import Context, Ctx, TaskError, task, workflow

from .inbox import new_csv_files

REQUIRED_COLUMNS = ("name", "email", "age")


@workflow(
    name="csv_cleanup",
    package="etl_toolkit",
    description="Parse CSV text, drop invalid rows and normalise the rest",
    author="Cloacina developers",
    triggers=[new_csv_files],
)
class csv_cleanup:
    @task(id="parse_rows")
    def parse_rows(context: Context) -> None:
        """Read ``csv_text`` (with a header line) into ``rows``."""
        text = context.get("csv_text")
        if not isinstance(text, str):
            raise TaskError.ValidationFailed(message="Missing csv_text: pass the CSV as a string")
        reader = csv.DictReader(io.StringIO(text))
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise TaskError.ValidationFailed(message=f"csv_text lacks column(s): {', '.join(missing)}")
        context.insert("rows", [{k: (v or "").strip() for k, v in row.items() if k} for row in reader])

    @task(id="drop_invalid", dependencies=["parse_rows"])
    def drop_invalid(context: Context) -> None:
        """Keep rows with a name, an e-mail address and a whole-number age; count the others."""
        valid: list[dict[str, Any]] = []
        rejected: list[int] = []
        for line, row in enumerate(context.get("rows", []), start=2):  # line 1 is the header
            if row["name"] and "@" in row["email"] and row["age"].isdigit():
                valid.append(row)
            else:
                rejected.append(line)
        context.insert("valid_rows", valid)
        context.insert("rejected_lines", rejected)

    @task(id="quarantine_rejects", dependencies=["drop_invalid"], when=[Ctx("quarantine").equals(True)])
    def quarantine_rejects(context: Context) -> None:
        """Only with ``quarantine: true``: keep the rejected lines aside as ``quarantined_lines``."""
        context.insert("quarantined_lines", list(context.get("rejected_lines", [])))

    @task(id="normalise", dependencies=["drop_invalid"])
    async def normalise(context: Context) -> None:
        """Lower-case e-mail addresses, title-case names, ages as numbers: ``clean_rows``."""
        rows = context.get("valid_rows")
        if rows is None:
            raise TaskError.ValidationFailed(message="Missing valid_rows")
        clean = [
            {"name": " ".join(row["name"].split()).title(), "email": row["email"].lower(), "age": int(row["age"])}
            for row in rows
        ]
        context.insert("clean_rows", clean)
        context.insert("cleanup_stats", {"kept": len(clean), "rejected": len(context.get("rejected_lines", []))})
