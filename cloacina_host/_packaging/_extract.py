"""Reading the task graph of a wheel by loading it in a separate process.

The parent side (``load_workflows``) unpacks the wheels with ``installer`` into a temporary
directory and runs ``python -m cloacina_host._packaging._extract`` there, with a time limit, the
way every process running package code is run (``_sandbox``): in a session of its own, everything
it started ended with it, its output captured with only its last ``TAIL_BYTES`` kept. The child
loads only that distribution's ``cloacina.workflows`` entry points (through ``discover``) and writes
each workflow's structure and fingerprint as JSON. Package code never runs in the caller.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._sandbox import quote_output, run_bounded

#: Default time limit for loading a package's entry points in the child process.
DEFAULT_LOAD_TIMEOUT_S = 30.0

#: Largest report (JSON) the child may write: the task graphs of every workflow of the package.
MAX_REPORT_BYTES = 64 * 1024 * 1024

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
        finished = run_bounded(command, timeout_s=timeout_s, env=env, cwd=tmp)
        if finished.timed_out:
            raise fail(
                f"loading the entry points of {distribution} took longer than {timeout_s:g} s (the limit); "
                "make importing the package cheap: do no work at import time"
            )
        if finished.returncode != 0 or not result_file.exists():
            raise fail(
                f"loading the entry points of {distribution} crashed (exit status {finished.returncode})."
                f"{quote_output(finished.output)}"
            )
        report = _read_report(result_file, distribution, fail)
    if report["problems"]:
        raise fail("; ".join(report["problems"]))
    if not report["workflows"]:
        raise fail(
            f"{distribution} declares no workflows: add an entry point in group cloacina.workflows to its "
            'pyproject.toml, e.g. [project.entry-points."cloacina.workflows"] my_flow = "my_pkg:my_flow"'
        )
    return LoadedWorkflows(workflows=report["workflows"], kit_version=report["kit_version"])


def _read_report(path: Path, distribution: str, fail: Fail) -> dict[str, Any]:
    """The child's report, read within limits (package code could have written that file too)."""
    from cloacina_workflow.limits import LimitExceeded, loads_limited

    if path.stat().st_size > MAX_REPORT_BYTES:
        raise fail(f"the task graph read from {distribution} is over {MAX_REPORT_BYTES:,} bytes")
    try:
        report = loads_limited(
            path.read_bytes(), f"the task graph read from {distribution}", max_bytes=MAX_REPORT_BYTES
        )
    except (LimitExceeded, ValueError) as exc:
        raise fail(f"reading the entry points of {distribution} gave an unreadable report: {exc}") from exc
    if not isinstance(report, dict) or not {"kit_version", "workflows", "problems"} <= set(report):
        raise fail(f"reading the entry points of {distribution} gave an unreadable report")
    return report


def _child(target: str, distribution: str, result_file: str) -> int:
    """Runs in the child: load the distribution's entry points from ``target`` and report as JSON."""
    from importlib import metadata

    from cloacina_workflow import __version__ as kit_version

    from .._discovery import discover, normalize
    from .._worker_main import host_shadows, import_problem, put_package_first, shadow_problem

    def report(workflows: list[dict[str, Any]], problems: list[str]) -> int:
        body = {"kit_version": kit_version, "workflows": workflows, "problems": problems}
        Path(result_file).write_text(json.dumps(body), encoding="utf-8")
        return 0

    shadows = host_shadows(target)
    if shadows:
        return report([], [shadow_problem(shadows)])
    mine = normalize(distribution)
    # import each entry point first, catching what ``discover`` lets through (SystemExit,
    # KeyboardInterrupt, any BaseException); ``discover`` then finds them imported already
    put_package_first(target)  # where the worker puts it: right after the standard library
    for dist in metadata.distributions(path=[target]):
        if normalize(dist.metadata["Name"] or "") != mine:
            continue
        for ep in dist.entry_points.select(group="cloacina.workflows"):
            try:
                ep.load()
            except Exception:  # noqa: BLE001  # discover reports these, in its words
                continue
            except BaseException as exc:  # noqa: BLE001  # a package that exits or interrupts at import
                return report([], [import_problem(dist.metadata["Name"], ep, exc)])
    catalog = discover(path=[target])
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
    return report(workflows, problems)


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))
