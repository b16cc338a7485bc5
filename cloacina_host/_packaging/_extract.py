"""Reading the task graph of a wheel at package time, through the one loader (``_probe``).

``load_workflows`` unpacks the wheels with ``installer`` (RECORD hashes checked) into a temporary
directory laid out as the registry installs a package, then loads it with ``_probe.probe``: in a
fresh worker, the program that will run the package's tasks, with the same pluggy plugin manager,
``check_pending`` and time limit as ``validate`` and ``register``. Package code never runs in the
caller.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._defaults import DEFAULT_LOAD_TIMEOUT_S

Fail = Callable[[str], Exception]


@dataclass(frozen=True)
class LoadedWorkflows:
    """What the worker found: workflows (manifest-shaped dicts) and the kit version it used."""

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


@contextmanager
def unpacked_site(wheels: Sequence[Path], fail: Fail, *, prefix: str) -> Iterator[Path]:
    """A temporary site directory holding ``wheels`` unpacked (the package's first); ``fail`` when one cannot be."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        target = Path(tmp) / "site"
        target.mkdir()
        try:
            install_wheels(wheels, target)
        except Exception as exc:  # installer raises many kinds on a bad wheel: one message
            raise fail(f"cannot unpack {wheels[0].name} with installer: {type(exc).__name__}: {exc}") from exc
        yield target


def load_workflows(
    wheels: Sequence[Path],
    distribution: str,
    fail: Fail,
    *,
    timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
) -> LoadedWorkflows:
    """Install ``wheels`` (the package's first) in a temp directory and read its workflows in a fresh worker."""
    from packaging.utils import canonicalize_name

    from ._probe import probe

    with unpacked_site(wheels, fail, prefix="cloacina-load-") as target:
        loaded = probe(target, subject=distribution, timeout_s=timeout_s, fail=fail)
    mine = canonicalize_name(distribution)
    others = sorted(k for k, wf in loaded.workflows.items() if canonicalize_name(wf["distribution"]) != mine)
    if others:
        raise fail(
            f"bundled distribution(s) offer workflow(s) {', '.join(others)} through cloacina.workflows entry "
            "points of their own; the worker would load them beside the package's. Remove those entry points, "
            "or do not bundle those distributions"
        )
    if not loaded.workflows:
        raise fail(
            f"{distribution} declares no workflows: add an entry point in group cloacina.workflows to its "
            'pyproject.toml, e.g. [project.entry-points."cloacina.workflows"] my_flow = "my_pkg:my_flow"'
        )
    workflows = [
        {
            "name": wf["name"],
            "package": key.split("::", 1)[0],
            "description": wf["description"],
            "author": wf["author"],
            "entry_point": wf["entry_point"],
            "fingerprint": wf["fingerprint"],
            "tasks": wf["tasks"],
            "schedules": wf.get("schedules", []),
            "triggers": wf.get("triggers", []),
            "input_schema": wf.get("input_schema"),
        }
        for key, wf in sorted(loaded.workflows.items(), key=lambda item: (item[1]["entry_point"], item[0]))
    ]
    return LoadedWorkflows(workflows=workflows, kit_version=loaded.kit_version)
