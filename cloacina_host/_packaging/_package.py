"""``package_workflow``: project directory -> wheel (pypa build) -> task graph (child process) -> archive."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._defaults import DEFAULT_LOAD_TIMEOUT_S
from ._builder import build_wheel, download_dependency_wheels
from ._errors import ArchiveError, PackagingError
from ._extract import load_workflows
from ._wheel import read_wheel, stdlib_shadows
from ._writer import source_date_epoch, write_archive

if TYPE_CHECKING:
    from ._keys import SigningKey
    from ._manifest import Manifest

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
    #: the fingerprints of the keys that signed it
    signed_by: tuple[str, ...] = ()


def _import_manifest() -> None:
    """pydantic, the kit's task models and the manifest's: what ``build_manifest`` needs."""
    from . import _assemble  # noqa: F401


def _import_loader() -> None:
    """installer, the worker machinery and the reader: what loading the wheel and reading back need."""
    import installer.destinations
    import installer.sources  # noqa: F401

    from . import _probe, _reader  # noqa: F401


#: Imports for the steps after the build, one while each of the backend's hooks (get_requires_for_build_wheel,
#: build_wheel) runs in its own process: this process would only wait, and on a second core they cost no time.
_DURING_BUILD = (_import_manifest, _import_loader)


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
    sign: Sequence[SigningKey] = (),
) -> PackageResult:
    """Build ``project_dir``'s wheel with pypa ``build`` and write the ``.cloacina`` archive ``output``.

    ``isolation=False`` builds in this environment (offline; the build requirements must be installed).
    ``bundle_deps`` adds wheels for the package's requirements, except ``cloacina-workflow`` and what
    it needs (the host provides them). The task graph is read by loading the built wheel in a child
    process. ``sign``: keys whose signatures over the manifest go into the archive
    (``signatures/``). Raises ``PackagingError``; on any failure no archive is left at ``output``.
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
        wheel = build_wheel(
            project, tmp / "dist", isolation=isolation, source_date_epoch=epoch, meanwhile=_DURING_BUILD
        )
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

        from ._assemble import build_manifest  # loaded during the build (``_DURING_BUILD``)
        from ._reader import read_archive

        say("Reading the task graph by loading the wheel in a separate process")
        loaded = load_workflows([wheel, *bundled], facts.name, fail, timeout_s=load_timeout_s)
        manifest = build_manifest(wheel, facts, bundled, loaded, epoch)
        say(f"Found {len(manifest.workflows)} workflow(s): {', '.join(w.key for w in manifest.workflows)}")
        manifest_bytes = manifest.to_json().encode("utf-8")
        signatures = dict(signature_members(sign, manifest_bytes))
        if sign:
            say(f"Signed the manifest with {', '.join(f'{k.name} ({k.fingerprint[:16]})' for k in sign)}")
        wheels = {w.name: w for w in [wheel, *bundled]}
        size = write_archive(out, manifest, wheels, epoch, manifest_bytes=manifest_bytes, signatures=signatures)
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
        signed_by=tuple(e.fingerprint for e in archive.signatures),
    )


def signature_members(keys: Sequence[SigningKey], manifest_bytes: bytes) -> list[tuple[str, bytes]]:
    """The signature member of each key over ``manifest_bytes`` (cryptography is imported only for some)."""
    if not keys:
        return []
    from ._signing import signature_member

    return [signature_member(k, manifest_bytes) for k in keys]
