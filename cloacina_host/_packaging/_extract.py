"""Reading the task graph of a wheel by loading it in a separate process.

The parent side (``load_workflows``) unpacks the wheels with ``installer`` into a temporary
directory and runs ``python -m cloacina_host._packaging._extract`` there, with a time limit. The
child loads only that distribution's ``cloacina.workflows`` entry points (through ``discover``) and
writes each workflow's structure and fingerprint as JSON. Package code never runs in the caller.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Default time limit for loading a package's entry points in the child process.
DEFAULT_LOAD_TIMEOUT_S = 30.0

Fail = Callable[[str], Exception]


@dataclass(frozen=True)
class LoadedWorkflows:
    """What the child found: workflows (manifest-shaped dicts) and the kit version it used."""

    workflows: list[dict[str, Any]]
    kit_version: str


def install_wheels(wheels: Sequence[Path], target: Path) -> None:
    """Unpack ``wheels`` into ``target`` as a flat site-packages directory (RECORD hashes checked)."""
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    scheme = {key: str(target) for key in ("purelib", "platlib")}
    scheme.update({key: str(target / f"_{key}") for key in ("headers", "scripts", "data")})
    destination = SchemeDictionaryDestination(
        scheme, interpreter=sys.executable, script_kind="win-amd64" if os.name == "nt" else "posix"
    )
    for wheel in wheels:
        with WheelFile.open(wheel) as source:
            source.validate_record()
            install(source, destination, {"INSTALLER": b"cloacina-host\n"})


def load_workflows(
    wheels: Sequence[Path],
    distribution: str,
    fail: Fail,
    *,
    timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
) -> LoadedWorkflows:
    """Install ``wheels`` (the package's first) in a temp directory and read its workflows in a child process."""
    with tempfile.TemporaryDirectory(prefix="cloacina-load-") as tmp:
        target = Path(tmp) / "site"
        target.mkdir()
        try:
            install_wheels(wheels, target)
        except Exception as exc:  # installer raises many kinds on a bad wheel: one message
            raise fail(f"cannot unpack {wheels[0].name} with installer: {type(exc).__name__}: {exc}") from exc
        result_file = Path(tmp) / "result.json"
        command = [
            sys.executable,
            "-m",
            "cloacina_host._packaging._extract",
            str(target),
            distribution,
            str(result_file),
        ]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "CLOACINA_DISABLE_PLUGINS": ""}
        try:
            proc = subprocess.run(
                command, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise fail(
                f"loading the entry points of {distribution} took longer than {timeout_s:g} s (the limit); "
                "make importing the package cheap: do no work at import time"
            ) from exc
        if proc.returncode != 0 or not result_file.exists():
            tail = (proc.stderr or proc.stdout).strip()[-2000:]
            raise fail(f"loading the entry points of {distribution} crashed (exit status {proc.returncode}): {tail}")
        report = json.loads(result_file.read_text(encoding="utf-8"))
    if report["problems"]:
        raise fail("; ".join(report["problems"]))
    if not report["workflows"]:
        raise fail(
            f"{distribution} declares no workflows: add an entry point in group cloacina.workflows to its "
            'pyproject.toml, e.g. [project.entry-points."cloacina.workflows"] my_flow = "my_pkg:my_flow"'
        )
    return LoadedWorkflows(workflows=report["workflows"], kit_version=report["kit_version"])


def _child(target: str, distribution: str, result_file: str) -> int:
    """Runs in the child: load the distribution's entry points from ``target`` and report as JSON."""
    from cloacina_workflow import __version__ as kit_version

    from .._discovery import discover, normalize

    # package code may print at import time: keep it away from anything we parse
    with contextlib.redirect_stdout(sys.stderr):
        catalog = discover(path=[target])
    mine = normalize(distribution)
    problems = [str(p) for p in catalog.problems if normalize(p.distribution) == mine]
    problems += [
        str(catalog.conflict_error(key))
        for key, entries in catalog.conflicts.items()
        if any(normalize(e.source.distribution or "") == mine for e in entries)
    ]
    workflows: list[dict[str, Any]] = []
    for entry in sorted(catalog.entries.values(), key=lambda e: (e.source.entry_point or "", e.key)):
        if normalize(entry.source.distribution or "") != mine:
            continue
        body = entry.workflow.describe()
        workflows.append(
            {
                "name": body["name"],
                "package": entry.package,
                "description": body["description"],
                "author": body["author"],
                "entry_point": entry.source.entry_point,
                "fingerprint": entry.workflow.fingerprint(),
                "tasks": body["tasks"],
            }
        )
    report = {"kit_version": kit_version, "workflows": workflows, "problems": problems}
    Path(result_file).write_text(json.dumps(report), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
