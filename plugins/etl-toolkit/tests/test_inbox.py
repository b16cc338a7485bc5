"""``new_csv_files``: each CSV file dropped in the inbox fires ``csv_cleanup`` once, with its text."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from etl_toolkit import csv_cleanup
from etl_toolkit.inbox import INBOX_ENV, new_csv_files

from cloacina_workflow import Fire, PollInfo


def test_csv_cleanup_subscribes_to_the_inbox_trigger() -> None:
    assert [t.name for t in csv_cleanup.triggers] == ["new_csv_files"]
    assert new_csv_files.spec.poll_interval_s == 5


def test_each_file_fires_once_and_no_inbox_never_fires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INBOX_ENV, raising=False)
    assert asyncio.run(new_csv_files.poll(PollInfo("new_csv_files"))) is None
    monkeypatch.setenv(INBOX_ENV, str(tmp_path))
    assert asyncio.run(new_csv_files.poll(PollInfo("new_csv_files"))) is None
    (tmp_path / "people.csv").write_text("name,email,age\nada,ada@example.org,36\n", encoding="utf-8")
    fired = asyncio.run(new_csv_files.poll(PollInfo("new_csv_files")))
    assert fired == Fire({"csv_text": "name,email,age\nada,ada@example.org,36\n", "source_file": "people.csv"})
    assert (tmp_path / "done" / "people.csv").is_file()
    assert asyncio.run(new_csv_files.poll(PollInfo("new_csv_files"))) is None
