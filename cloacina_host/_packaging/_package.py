"""``package_workflow``: project directory -> wheel (pypa build) -> task graph (child process) -> archive."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cloacina_workflow import Schedule

from .._defaults import DEFAULT_LOAD_TIMEOUT_S
from ._builder import build_wheel, download_dependency_wheels
from ._errors import ArchiveError, PackagingError
from ._extract import LoadedWorkflows, load_workflows
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
from ._reader import read_archive
from ._wheel import WheelFacts, read_wheel, stdlib_shadows
from ._writer import created_at, source_date_epoch, write_archive

if TYPE_CHECKING:
    from packaging.tags import Tag

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PackageResult:
    """What ``package_workflow`` wrote: the archive's path, size and sha256, and its manifest."""

    path: Path
    size: int
    sha256: str
    manifest: Manifest
    build_seconds: float
    total_seconds: float


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
            input_schema=wf.get("input_schema"),
        )
        for wf in loaded.workflows
    )


def _check_project(project: Path) -> Path:
    project = project.resolve()
    if not project.is_dir():
        raise PackagingError(
            f"{project} is not a directory; give the directory of a workflow project.", project=project
        )
    if not (project / "pyproject.toml").is_file():
        raise PackagingError(
            f"{project} has no pyproject.toml, so it is not a Python project that can be built. Run "
            "`cloacina-ctl new NAME` to start one, or point to the directory that holds pyproject.toml.",
            project=project,
        )
    return project


def package_workflow(
    project_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    isolation: bool = True,
    bundle_deps: bool = False,
    find_links: Sequence[str] = (),
    no_index: bool = False,
    load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
    progress: Progress | None = None,
) -> PackageResult:
    """Build ``project_dir``'s wheel with pypa ``build`` and write the ``.cloacina`` archive ``output``.

    ``isolation=False`` builds in this environment (offline; the build requirements must be installed).
    ``bundle_deps`` adds wheels for the package's requirements, except ``cloacina-workflow`` and what
    it needs (the host provides them). The task graph is read by loading the built wheel in a child
    process. Raises ``PackagingError``; on any failure no archive is left at ``output``.
    """
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    project = _check_project(Path(project_dir))
    out = Path(output).resolve()
    epoch = source_date_epoch()

    def fail(message: str) -> PackagingError:
        return PackagingError(f"Cannot package {project}: {message}", project=project)

    with tempfile.TemporaryDirectory(prefix="cloacina-package-") as tmp_name:
        tmp = Path(tmp_name)
        say(f"Building the wheel with pypa build ({'isolated environment' if isolation else 'no isolation'})")
        build_started = time.perf_counter()
        wheel = build_wheel(project, tmp / "dist", isolation=isolation, source_date_epoch=epoch)
        build_seconds = time.perf_counter() - build_started
        say(f"Built {wheel.name} ({wheel.stat().st_size:,} bytes) in {build_seconds:.1f} s")

        try:
            facts = read_wheel(wheel.read_bytes(), wheel.name, lambda msg, _member: ArchiveError(msg))
        except ArchiveError as exc:
            raise fail(f"the backend built a wheel that cannot be read: {exc}") from exc
        if not facts.entry_points:
            raise fail(
                "it declares no cloacina.workflows entry point, so the host would find no workflow in it. Add one "
                'to pyproject.toml: [project.entry-points."cloacina.workflows"] my_flow = "my_package:my_flow"'
            )
        say(
            f"Read METADATA, WHEEL tags ({', '.join(str(t) for t in facts.tags)}) and "
            f"{len(facts.entry_points)} entry point(s)"
        )

        shadows = stdlib_shadows(facts.top_level)
        if shadows:
            raise fail(
                f"its wheel installs top-level module(s) {', '.join(shadows)}, which shadow the standard library; "
                "rename them (the registry refuses such packages)"
            )

        bundled: list[Path] = []
        if bundle_deps:
            bundled = download_dependency_wheels(
                project,
                facts.metadata.get("requires-dist", []),
                tmp / "deps",
                find_links=find_links,
                no_index=no_index,
            )
            say(f"Bundled {len(bundled)} dependency wheel(s): {', '.join(w.name for w in bundled) or 'none needed'}")

        say("Reading the task graph by loading the wheel in a separate process")
        loaded = load_workflows([wheel, *bundled], facts.name, fail, timeout_s=load_timeout_s)
        workflows = _workflows(loaded, facts)
        say(f"Found {len(workflows)} workflow(s): {', '.join(w.key for w in workflows)}")

        manifest = Manifest(
            format_version=FORMAT_VERSION,
            package=_package_info(facts),
            wheel=WheelInfo(
                filename=wheel.name,
                sha256=_sha256(wheel),
                size=wheel.stat().st_size,
                tags=tuple(_tag(t) for t in facts.tags),
                pure=facts.pure,
            ),
            workflows=workflows,
            bundled_wheels=tuple(
                BundledWheel(filename=w.name, sha256=_sha256(w), size=w.stat().st_size) for w in bundled
            ),
            cloacina_workflow_version=loaded.kit_version,
            builder=BuilderInfo(version=_host_version()),
            created_at=created_at(epoch),
        )
        size = write_archive(out, manifest, {w.name: w for w in [wheel, *bundled]}, epoch)
    try:
        archive = read_archive(out, require_compatible=False)
    except ArchiveError as exc:
        out.unlink(missing_ok=True)
        raise fail(f"the archive written does not read back: {exc}") from exc
    say(f"Wrote {out} ({size:,} bytes)")
    return PackageResult(
        path=out,
        size=size,
        sha256=archive.sha256,
        manifest=manifest,
        build_seconds=build_seconds,
        total_seconds=time.perf_counter() - started,
    )
