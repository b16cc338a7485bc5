"""Reading a ``.cloacina`` archive that may be hostile: the checks every consumer relies on.

``read_archive`` never runs package code and never extracts anything to disk. It refuses, each with
one message naming the problem and where it is: a file that is not a zip or is truncated, unsafe
member names, links, members over the size or compression limits, a missing, misplaced, non-JSON,
unknown-version or schema-violating manifest, wheels missing or unexpected, a sha256 or size that
differs from the manifest, a wheel that is not a wheel, tags this interpreter cannot load (unless
``require_compatible=False``, for ``inspect``), entry points the wheel does not declare, a task
graph that does not validate, and top-level modules that shadow the standard library.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cloacina_workflow import Task, Workflow, WorkflowDefinitionError

from ._errors import ArchiveError
from ._manifest import FORMAT_VERSION, MANIFEST_NAME, WHEELS_DIR, Manifest
from ._wheel import WheelFacts, read_wheel, stdlib_shadows
from ._zipsafe import (
    ARCHIVE_LIMITS,
    MAX_MANIFEST_SIZE,
    MAX_MEMBER_SIZE,
    MAX_TOTAL_SIZE,
    check_members,
    read_member,
    translated,
)

#: Largest ``.cloacina`` file read at all.
MAX_ARCHIVE_SIZE = MAX_TOTAL_SIZE

if TYPE_CHECKING:
    from packaging.tags import Tag


@dataclass(frozen=True)
class Archive:
    """A ``.cloacina`` archive that passed every static check: its manifest and its verified wheels."""

    source: str
    manifest: Manifest
    wheels: Mapping[str, bytes]
    facts: Mapping[str, WheelFacts]
    sha256: str
    size: int

    @property
    def wheel_bytes(self) -> bytes:
        """The package's own wheel."""
        return self.wheels[self.manifest.wheel.filename]

    @property
    def top_level_modules(self) -> tuple[str, ...]:
        return self.facts[self.manifest.wheel.filename].top_level


@cache
def supported_tags() -> frozenset[Tag]:
    from packaging.tags import sys_tags

    return frozenset(sys_tags())


def _placeholder_task(_context: Any) -> None:  # pragma: no cover - never called: graph checks only
    raise RuntimeError("a task read from a manifest has no code")


def _pydantic_problems(exc: ValidationError, limit: int = 5) -> str:
    problems = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problems.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


class _Reader:
    def __init__(self, source: str, require_compatible: bool) -> None:
        self.source = source
        self.require_compatible = require_compatible

    def fail(self, message: str, member: str | None = None) -> ArchiveError:
        end = "" if message.endswith(".") else "."
        return ArchiveError(f"{self.source}: {message}{end}", path=self.source, member=member)

    def read(self, data: bytes) -> Archive:
        if not zipfile.is_zipfile(io.BytesIO(data)):
            if data[:4] == b"PK\x03\x04":
                raise self.fail("is a truncated or damaged zip file (its central directory is missing)")
            raise self.fail("is not a .cloacina archive: it is not a zip file")
        with translated(self.fail, "the archive"), zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            check_members(infos, ARCHIVE_LIMITS, self.fail)
            self._check_layout(infos)
            manifest = self._manifest(zf, infos[0])
            wheels, facts = self._wheels(zf, manifest)
        self._check_entry_points(manifest, facts[manifest.wheel.filename])
        self._check_graphs(manifest)
        return Archive(
            source=self.source,
            manifest=manifest,
            wheels=wheels,
            facts=facts,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )

    def _check_layout(self, infos: list[zipfile.ZipInfo]) -> None:
        names = [i.filename for i in infos]
        if MANIFEST_NAME not in names:
            raise self.fail(
                f"has no {MANIFEST_NAME}; a .cloacina archive starts with it (rebuild with cloacina-ctl package)"
            )
        if names[0] != MANIFEST_NAME:
            raise self.fail(
                f"{MANIFEST_NAME} is member {names.index(MANIFEST_NAME) + 1}, not the first member "
                f"(the first is {names[0]!r})",
                MANIFEST_NAME,
            )
        for name in names[1:]:
            rest = name[len(WHEELS_DIR) :] if name.startswith(WHEELS_DIR) else None
            if rest is None or "/" in rest or not rest.endswith(".whl"):
                raise self.fail(
                    f"has an unexpected member {name!r}; an archive holds only {MANIFEST_NAME} and wheels/*.whl",
                    name,
                )

    def _manifest(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Manifest:
        raw = read_member(zf, info, self.fail, MAX_MANIFEST_SIZE)
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise self.fail(f"{MANIFEST_NAME} is not UTF-8 text (byte {exc.start})", MANIFEST_NAME) from exc
        except json.JSONDecodeError as exc:
            raise self.fail(
                f"{MANIFEST_NAME} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", MANIFEST_NAME
            ) from exc
        if not isinstance(data, dict):
            raise self.fail(f"{MANIFEST_NAME} must be a JSON object, not {type(data).__name__}", MANIFEST_NAME)
        version = data.get("format_version")
        if version is None:
            raise self.fail(f"{MANIFEST_NAME} has no format_version", MANIFEST_NAME)
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise self.fail(
                f"{MANIFEST_NAME} has format_version {version!r}, which this host does not read (it reads "
                f"{FORMAT_VERSION}); upgrade cloacina-host or repackage with this one",
                MANIFEST_NAME,
            )
        try:
            return Manifest.model_validate(data)
        except ValidationError as exc:
            raise self.fail(
                f"{MANIFEST_NAME} does not follow the manifest schema: {_pydantic_problems(exc)}", MANIFEST_NAME
            ) from exc

    def _wheels(self, zf: zipfile.ZipFile, manifest: Manifest) -> tuple[dict[str, bytes], dict[str, WheelFacts]]:
        expected = manifest.wheel_members()
        if len(set(expected)) != len(expected):
            raise self.fail(f"{MANIFEST_NAME} lists a wheel twice", MANIFEST_NAME)
        present = sorted(i.filename for i in zf.infolist()[1:])
        for member in expected:
            if member not in present:
                raise self.fail(f"{MANIFEST_NAME} lists {member!r}, but the archive has no such member", member)
        for member in present:
            if member not in expected:
                raise self.fail(f"member {member!r} is not listed in {MANIFEST_NAME}", member)
        declared = {manifest.wheel.filename: (manifest.wheel.sha256, manifest.wheel.size)}
        declared.update({b.filename: (b.sha256, b.size) for b in manifest.bundled_wheels})
        wheels: dict[str, bytes] = {}
        facts: dict[str, WheelFacts] = {}
        for member in expected:
            filename = member[len(WHEELS_DIR) :]
            sha256, size = declared[filename]
            info = zf.getinfo(member)
            if info.file_size != size:
                raise self.fail(f"member {member!r} is {info.file_size} bytes; {MANIFEST_NAME} declares {size}", member)
            data = read_member(zf, info, self.fail, MAX_MEMBER_SIZE)
            actual = hashlib.sha256(data).hexdigest()
            if actual != sha256:
                raise self.fail(
                    f"member {member!r} has sha256 {actual}, but {MANIFEST_NAME} declares {sha256}: the wheel was "
                    "altered after packaging",
                    member,
                )
            wheel_facts = read_wheel(data, filename, self.fail)
            self._check_tags(member, wheel_facts)
            shadows = stdlib_shadows(wheel_facts.top_level)
            if shadows:
                raise self.fail(
                    f"wheel {filename!r} installs top-level module(s) {', '.join(shadows)}, which shadow the standard "
                    "library; rename them",
                    member,
                )
            wheels[filename] = data
            facts[filename] = wheel_facts
        main = facts[manifest.wheel.filename]
        pkg = manifest.package
        if main.name != pkg.name or main.version != pkg.version:
            raise self.fail(
                f"the wheel is {main.name} {main.version}, but {MANIFEST_NAME} describes {pkg.name} {pkg.version}",
                WHEELS_DIR + manifest.wheel.filename,
            )
        if sorted(str(t) for t in manifest.wheel.tags) != sorted(str(t) for t in main.tags):
            raise self.fail(
                f"{MANIFEST_NAME} wheel.tags do not match the tags of {manifest.wheel.filename!r}", MANIFEST_NAME
            )
        if manifest.wheel.pure != main.pure:
            raise self.fail(
                f"{MANIFEST_NAME} wheel.pure is {manifest.wheel.pure}, but the wheel says otherwise", MANIFEST_NAME
            )
        return wheels, facts

    def _check_tags(self, member: str, facts: WheelFacts) -> None:
        if not self.require_compatible or supported_tags() & set(facts.tags):
            return
        tags = ", ".join(str(t) for t in facts.tags)
        from packaging.tags import sys_tags

        best = next(iter(sys_tags()))
        raise self.fail(
            f"wheel {facts.filename!r} has tags {tags}, none of which this interpreter can load (it accepts e.g. "
            f"{best}); package it on the target platform, or build a pure-Python wheel",
            member,
        )

    def _check_entry_points(self, manifest: Manifest, facts: WheelFacts) -> None:
        for i, wf in enumerate(manifest.workflows):
            ep = wf.entry_point
            value = facts.entry_points.get(ep.name)
            if value is None:
                raise self.fail(
                    f"workflows[{i}] {wf.key!r} names entry point {ep.name!r}, which the wheel does not declare in "
                    "group cloacina.workflows",
                    MANIFEST_NAME,
                )
            if value != ep.value:
                raise self.fail(
                    f"workflows[{i}] {wf.key!r}: entry point {ep.name!r} is {value!r} in the wheel but {ep.value!r} "
                    f"in {MANIFEST_NAME}",
                    MANIFEST_NAME,
                )
        keys = [wf.key for wf in manifest.workflows]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise self.fail(f"{MANIFEST_NAME} lists workflow {duplicates[0]!r} more than once", MANIFEST_NAME)

    def _check_graphs(self, manifest: Manifest) -> None:
        for i, wf in enumerate(manifest.workflows):
            ids = [t.id for t in wf.tasks]
            twice = sorted({tid for tid in ids if ids.count(tid) > 1})
            if twice:
                raise self.fail(
                    f"workflows[{i}] {wf.key!r} in {MANIFEST_NAME} lists task {twice[0]!r} twice", MANIFEST_NAME
                )
            try:
                Workflow(wf.name, [Task(t, _placeholder_task) for t in wf.tasks], package=wf.package)
            except WorkflowDefinitionError as exc:
                raise self.fail(
                    f"workflows[{i}] {wf.key!r} in {MANIFEST_NAME} is not a valid graph: {exc}", MANIFEST_NAME
                ) from exc


def read_archive(source: str | os.PathLike[str] | bytes, *, require_compatible: bool = True) -> Archive:
    """Read and check a ``.cloacina`` archive (a path, or its bytes). Raises ``ArchiveError``, nothing else.

    With ``require_compatible=False`` wheels tagged for other platforms are accepted (``inspect`` shows
    an archive built elsewhere); everything else is checked all the same.
    """
    if isinstance(source, bytes):
        name, data = "<archive bytes>", source
    else:
        path = Path(source)
        name = str(path)
        try:
            size = path.stat().st_size
            if size > MAX_ARCHIVE_SIZE:
                raise ArchiveError(f"{name}: is {size} bytes, more than the limit of {MAX_ARCHIVE_SIZE}.", path=name)
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArchiveError(f"{name}: no such file. Check the path.", path=name) from None
        except IsADirectoryError:
            raise ArchiveError(f"{name}: is a directory, not a .cloacina file.", path=name) from None
        except OSError as exc:
            raise ArchiveError(f"{name}: cannot be read: {exc.strerror}.", path=name) from exc
    return _Reader(name, require_compatible).read(data)
