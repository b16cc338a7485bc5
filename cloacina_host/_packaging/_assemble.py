"""The manifest of a package built here: from its wheel's facts and what a fresh worker loaded from it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cloacina_workflow import Schedule, TriggerSpec

from ._extract import LoadedWorkflows
from ._manifest import (
    FORMAT_VERSION,
    BuilderInfo,
    BundledWheel,
    EntryPointRef,
    Manifest,
    ManifestTask,
    ManifestWorkflow,
    PackageInfo,
    WheelInfo,
    WheelTag,
)
from ._wheel import WheelFacts
from ._writer import created_at

if TYPE_CHECKING:
    from packaging.tags import Tag


def _host_version() -> str:
    from .._version import host_version

    return host_version()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tag(tag: Tag) -> WheelTag:
    return WheelTag(python=tag.interpreter, abi=tag.abi, platform=tag.platform)


def _package_info(facts: WheelFacts) -> PackageInfo:
    return PackageInfo(
        name=facts.name,
        version=facts.version,
        summary=facts.first("Summary"),
        author=facts.first("Author") or facts.first("Author-email"),
        license=facts.first("License-Expression") or facts.first("License"),
        requires_python=facts.first("Requires-Python"),
        requirements=tuple(facts.metadata.get("requires-dist", [])),
    )


def _workflows(loaded: LoadedWorkflows, facts: WheelFacts) -> tuple[ManifestWorkflow, ...]:
    return tuple(
        ManifestWorkflow(
            name=wf["name"],
            package=wf["package"],
            description=wf["description"] or "",
            author=wf["author"],
            entry_point=EntryPointRef(name=wf["entry_point"], value=facts.entry_points[wf["entry_point"]]),
            fingerprint=wf["fingerprint"],
            tasks=tuple(ManifestTask.model_validate(t) for t in wf["tasks"]),
            schedules=tuple(Schedule.model_validate(s) for s in wf.get("schedules", ())),
            triggers=tuple(TriggerSpec.model_validate(t) for t in wf.get("triggers", ())),
            input_schema=wf.get("input_schema"),
        )
        for wf in loaded.workflows
    )


def build_manifest(
    wheel: Path, facts: WheelFacts, bundled: Sequence[Path], loaded: LoadedWorkflows, epoch: int
) -> Manifest:
    """The manifest of ``wheel`` (read as ``facts``) with its ``bundled`` wheels and ``loaded`` workflows."""
    return Manifest(
        format_version=FORMAT_VERSION,
        package=_package_info(facts),
        wheel=WheelInfo(
            filename=wheel.name,
            sha256=_sha256(wheel),
            size=wheel.stat().st_size,
            tags=tuple(_tag(t) for t in facts.tags),
            pure=facts.pure,
        ),
        workflows=_workflows(loaded, facts),
        bundled_wheels=tuple(BundledWheel(filename=w.name, sha256=_sha256(w), size=w.stat().st_size) for w in bundled),
        cloacina_workflow_version=loaded.kit_version,
        builder=BuilderInfo(version=_host_version()),
        created_at=created_at(epoch),
    )
