"""What the CLI acceptance tests share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloacina_host.cli import main

#: ``ctl(*args)`` → ``(status, stdout, stderr)``
Ctl = Callable[..., tuple[int, str, str]]


@pytest.fixture
def ctl(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Ctl:
    """``ctl(*args)`` → ``(status, stdout, stderr)`` of ``cloacina-ctl``, in-process, on this test's database
    and home (and the default tenant, no signing passphrase from the environment)."""
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOACINA_DATABASE_URL", database_url)
    monkeypatch.delenv("CLOACINA_TENANT", raising=False)
    monkeypatch.delenv("CLOACINA_SIGNING_PASSPHRASE", raising=False)
    capfd.readouterr()

    def run(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out, err = capfd.readouterr()
        return status, out, err

    return run
