"""``validate_archive``: every check the registry runs before storing an archive, without storing it.

The static checks of ``read_archive`` (this interpreter must be able to load the wheels), then the
wheels are unpacked with ``installer`` (RECORD hashes checked) into a temporary directory and their
entry points loaded in a child process with a time limit; what loads must be exactly what the
manifest says: the same workflows, tasks and fingerprints.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ArchiveError
from ._extract import DEFAULT_LOAD_TIMEOUT_S, load_workflows
from ._manifest import MANIFEST_NAME, Manifest, ManifestTask
from ._reader import Archive, read_archive

#: The checks ``validate_archive`` runs, in order (reported by ``cloacina-ctl validate``).
CHECKS = (
    "zip structure, member names, links, sizes and compression ratios",
    "manifest.json first, JSON, known format_version, schema",
    "wheel sizes and sha256 match the manifest",
    "wheels are wheels: dist-info, METADATA, WHEEL tags, entry points",
    "wheel tags loadable by this interpreter",
    "no top-level module shadows the standard library",
    "task graphs valid (known dependencies, no cycles)",
    "wheels install cleanly (RECORD hashes)",
    "entry points load within the time limit and match the manifest (workflows, tasks, fingerprints)",
)


@dataclass(frozen=True)
class ValidationReport:
    """A valid archive: what was read, and the checks it passed."""

    archive: Archive
    checks: tuple[str, ...] = field(default=CHECKS)

    @property
    def manifest(self) -> Manifest:
        return self.archive.manifest


def _compare(archive: Archive, loaded: list[dict[str, object]], fail: Callable[[str], ArchiveError]) -> None:
    manifest = archive.manifest
    declared = {wf.key: wf for wf in manifest.workflows}
    found = {f"{wf['package']}::{wf['name']}": wf for wf in loaded}
    missing = sorted(set(declared) - set(found))
    extra = sorted(set(found) - set(declared))
    if missing:
        raise fail(f"{MANIFEST_NAME} lists workflow(s) {', '.join(missing)}, which loading the wheel does not give")
    if extra:
        raise fail(f"loading the wheel gives workflow(s) {', '.join(extra)}, which {MANIFEST_NAME} does not list")
    for key, wf in declared.items():
        got = found[key]
        if got["entry_point"] != wf.entry_point.name:
            raise fail(f"workflow {key!r} comes from entry point {got['entry_point']!r}, not {wf.entry_point.name!r}")
        tasks = tuple(ManifestTask.model_validate(t) for t in got["tasks"])  # type: ignore[attr-defined]
        if tasks != wf.tasks:
            raise fail(f"workflow {key!r}: the tasks that load differ from the tasks in {MANIFEST_NAME}")
        if got["fingerprint"] != wf.fingerprint:
            raise fail(
                f"workflow {key!r} has fingerprint {got['fingerprint']} when loaded, but {MANIFEST_NAME} declares "
                f"{wf.fingerprint}: the manifest does not describe this wheel's code"
            )


def validate_archive(
    source: str | os.PathLike[str] | bytes, *, load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S
) -> ValidationReport:
    """Run the registry's checks on an archive without registering it. Raises ``ArchiveError``."""
    archive = read_archive(source, require_compatible=True)

    def fail(message: str) -> ArchiveError:
        return ArchiveError(f"{archive.source}: {message.rstrip('.')}.", path=archive.source)

    manifest = archive.manifest
    with tempfile.TemporaryDirectory(prefix="cloacina-validate-") as tmp:
        paths = []
        for filename in [manifest.wheel.filename, *(b.filename for b in manifest.bundled_wheels)]:
            path = Path(tmp) / filename
            path.write_bytes(archive.wheels[filename])
            paths.append(path)
        loaded = load_workflows(paths, manifest.package.name, fail, timeout_s=load_timeout_s)
    _compare(archive, loaded.workflows, fail)
    return ValidationReport(archive=archive)
