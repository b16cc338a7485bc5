"""``new_csv_files``: a poll trigger that fires ``csv_cleanup`` for each CSV file dropped in an inbox.

The inbox is the directory named by ``ETL_TOOLKIT_INBOX`` (no inbox, no firing). Every five seconds
the host polls it; the oldest ``*.csv`` file there is moved to ``done/`` and its text fires the
trigger as ``csv_text``, so each file starts ``csv_cleanup`` once.
"""

from __future__ import annotations

import os
from pathlib import Path

from cloacina_workflow import Fire, PollInfo, trigger

INBOX_ENV = "ETL_TOOLKIT_INBOX"


@trigger(name="new_csv_files", poll_interval_s=5, timeout_s=10)
def new_csv_files(info: PollInfo) -> Fire | None:
    """Fire with the oldest CSV file in the inbox (moved to ``done/``), or not now."""
    inbox = os.environ.get(INBOX_ENV)
    if not inbox:
        return None
    waiting = sorted(Path(inbox).glob("*.csv"), key=lambda p: (p.stat().st_mtime, p.name))
    if not waiting:
        return None
    oldest = waiting[0]
    done = Path(inbox) / "done"
    done.mkdir(exist_ok=True)
    text = oldest.read_text(encoding="utf-8")
    oldest.replace(done / oldest.name)
    return Fire({"csv_text": text, "source_file": oldest.name})
