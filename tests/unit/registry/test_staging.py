"""Staging directories of installs: a live one (another process) is kept, a dead or old one is removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloacina_host._registry._staging import (
    OWNER_FILE,
    REMOVING_PREFIX,
    STALE_AFTER_S,
    _host_tag,
    clean_stale,
    make_staging,
)

HOLDER = """
import sys
from pathlib import Path
from cloacina_host._registry._staging import make_staging
staging = make_staging(Path(sys.argv[1]), "0123456789ab")
print(staging.path, flush=True)
sys.stdin.read()  # holds the staging directory until stdin closes
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Another process that owns a staging directory under ``tmp_path/packages``, until told to stop."""
    root = tmp_path / "packages"
    root.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # blocks until the child made it (or died: "" then)
        assert line, "the holder process died before making its staging directory"
        yield proc, Path(line)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.communicate(timeout=30)  # reaps it and closes its pipes


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    for p in (path / OWNER_FILE, path):
        if p.exists():
            os.utime(p, (old, old))


def test_a_live_install_of_another_process_is_kept_even_when_old(holder: tuple[subprocess.Popen[str], Path]) -> None:
    proc, staging = holder
    _age(staging, STALE_AFTER_S * 3)
    assert clean_stale(staging.parent) == []
    assert staging.is_dir()
    os.killpg(proc.pid, 9)  # kill -9: the kernel drops its lock, nothing removes its directory
    proc.wait(timeout=30)
    assert staging.is_dir()
    assert clean_stale(staging.parent) == [staging]
    assert list(staging.parent.iterdir()) == []


def test_a_young_directory_of_another_host_is_kept_an_old_one_removed(tmp_path: Path) -> None:
    root = tmp_path / "packages"
    root.mkdir()
    other = root / ".installing-0123456789ab-remote"
    other.mkdir()
    (other / OWNER_FILE).write_text(json.dumps({"host": "another-machine", "pid": 1, "started": time.time()}))
    (other / "payload").write_bytes(b"x" * 1024)
    bare = root / ".installing-0123456789ab-nomarker"  # killed before it wrote its owner file
    bare.mkdir()
    assert clean_stale(root) == []
    _age(other, STALE_AFTER_S + 60)
    _age(bare, STALE_AFTER_S + 60)
    assert sorted(clean_stale(root)) == sorted([other, bare])
    assert list(root.iterdir()) == []


def test_own_staging_and_finished_installs_are_never_touched(tmp_path: Path) -> None:
    root = tmp_path / "packages"
    root.mkdir()
    mine = make_staging(root, "0123456789ab")
    finished = root / ("a" * 64)
    finished.mkdir()
    _age(mine.path, STALE_AFTER_S * 3)
    try:
        assert clean_stale(root) == []
        assert mine.path.is_dir()
        assert finished.is_dir()
    finally:
        mine.close()
    (root / f"{REMOVING_PREFIX}half-removed").mkdir()  # a cleaner killed while deleting
    clean_stale(root)
    assert sorted(p.name for p in root.iterdir()) == sorted([mine.path.name, finished.name])


def test_killed_before_its_owner_file_its_name_still_says_whose_it_was(tmp_path: Path) -> None:
    root = tmp_path / "packages"
    root.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)  # it has exited: no process of this host has that pid now (barring reuse)
    here = f"{_host_tag()}-{dead_pid}"
    dead = root / f".installing-0123456789ab-{here}-abcd1234"
    dead.mkdir()
    live = root / f".installing-0123456789ab-{_host_tag()}-{os.getppid()}-abcd1234"  # pytest's parent runs
    live.mkdir()
    assert clean_stale(root) == [dead]
    assert [p.name for p in root.iterdir()] == [live.name]


def test_a_missing_root_is_nothing_to_clean(tmp_path: Path) -> None:
    assert clean_stale(tmp_path / "absent") == []
    assert not (tmp_path / "absent").exists()
