"""Reading a ``.cloacina`` archive that may be hostile: the checks every consumer relies on.

``read_archive`` never runs package code and never extracts anything to disk. It refuses, each with
one message naming the problem and where it is: a file that is not a zip or is truncated, unsafe
member names, links, members over the size or compression limits, a missing, misplaced, non-JSON,
unknown-version or schema-violating manifest, a damaged signature member or (unless
``verify_signatures=False``) one that does not verify over the manifest's bytes, wheels missing or
unexpected, a sha256 or size that differs from the manifest, a wheel that is not a wheel, tags this
interpreter cannot load (unless ``require_compatible=False``, for ``inspect``), entry points the
wheel does not declare, a task graph that does not validate, top-level modules that shadow the
standard library (wherever the wheel places them: root, ``.data/purelib``, ``.data/platlib``) and
top-level ``.pth`` files.

The limits on size and shape are checked before the work they protect: the file's size before
reading it (``read_archive_file``), the manifest's nesting depth while parsing it and its counts of
workflows and tasks before the schema, the unpacked total of the archive and all its wheels from
their central directories before anything is extracted; graph checks are iterative and linear.
Every message is passed through ``safe_text``: text from the archive never reaches a terminal raw.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from cloacina_workflow.limits import LimitExceeded, check_task_count, check_workflow_count, loads_limited

from ._errors import ArchiveError
from ._graph import GraphProblem, check_graph
from ._manifest import FORMAT_VERSION, MANIFEST_NAME, READABLE_FORMAT_VERSIONS, WHEELS_DIR, Manifest
from ._platform import host_description, supported_tags
from ._signing import MAX_SIGNATURE_SIZE, MAX_SIGNATURES, SignatureEntry, is_signature_member, parse_signature
from ._source import MAX_ARCHIVE_SIZE, read_archive_file
from ._text import safe_text
from ._wheel import WheelFacts, read_wheel, stdlib_shadows
from ._zipsafe import (
    ARCHIVE_LIMITS,
    MAX_MANIFEST_SIZE,
    MAX_MEMBER_SIZE,
    MAX_UNPACKED_SIZE,
    check_members,
    read_member,
    translated,
)

__all__ = ["MAX_ARCHIVE_SIZE", "Archive", "read_archive", "supported_tags"]


@dataclass(frozen=True)
class Archive:
    """A ``.cloacina`` archive that passed every static check: its manifest and its verified wheels."""

    source: str
    manifest: Manifest
    wheels: Mapping[str, bytes]
    facts: Mapping[str, WheelFacts]
    sha256: str
    size: int
    #: The archive's bytes, exactly as read and checked (what the registry stores).
    data: bytes = field(default=b"", repr=False, compare=False)
    #: ``manifest.json`` exactly as stored: what signatures cover.
    manifest_bytes: bytes = field(default=b"", repr=False, compare=False)
    #: The signatures it carries (``signatures/*.json``), well formed; verified unless read with
    #: ``verify_signatures=False`` (``inspect`` shows which do).
    signatures: tuple[SignatureEntry, ...] = ()

    @property
    def wheel_bytes(self) -> bytes:
        """The package's own wheel."""
        return self.wheels[self.manifest.wheel.filename]

    @property
    def top_level_modules(self) -> tuple[str, ...]:
        return self.facts[self.manifest.wheel.filename].top_level


def check_manifest_counts(data: dict[str, Any]) -> None:
    """Count workflows and tasks in the raw manifest JSON, before the schema and any graph work."""
    workflows = data.get("workflows")
    if not isinstance(workflows, list):
        return  # the schema says what is wrong
    check_workflow_count(len(workflows), MANIFEST_NAME)
    for i, wf in enumerate(workflows):
        tasks = wf.get("tasks") if isinstance(wf, dict) else None
        if isinstance(tasks, list):
            check_task_count(len(tasks), f"{MANIFEST_NAME} workflows[{i}]")


def _pydantic_problems(exc: ValidationError, limit: int = 5) -> str:
    problems = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problems.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


class _Reader:
    def __init__(self, source: str, require_compatible: bool, verify_signatures: bool = True) -> None:
        self.source = source
        self.require_compatible = require_compatible
        self.verify_signatures = verify_signatures

    def fail(self, message: str, member: str | None = None) -> ArchiveError:
        end = "" if message.endswith(".") else "."
        return ArchiveError(safe_text(f"{self.source}: {message}{end}"), path=self.source, member=member)

    def read(self, data: bytes) -> Archive:
        if not zipfile.is_zipfile(io.BytesIO(data)):
            if data[:4] == b"PK\x03\x04":
                raise self.fail("is a truncated or damaged zip file (its central directory is missing)")
            raise self.fail("is not a .cloacina archive: it is not a zip file")
        with translated(self.fail, "the archive"), zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            check_members(infos, ARCHIVE_LIMITS, self.fail)
            self._check_layout(infos)
            raw_manifest = read_member(zf, infos[0], self.fail, MAX_MANIFEST_SIZE)
            signatures = self._signatures(zf, infos, raw_manifest)
            manifest = self._manifest(raw_manifest)
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
            data=data,
            manifest_bytes=raw_manifest,
            signatures=signatures,
        )

    def _check_layout(self, infos: list[zipfile.ZipInfo]) -> None:
        names = [i.filename for i in infos]
        if MANIFEST_NAME not in names:
            raise self.fail(
                f"has no {MANIFEST_NAME}; a .cloacina archive starts with it (rebuild with cloacina-ctl package)"
            )
        if names[0] != MANIFEST_NAME:
            hint = (
                "; a signature comes after the manifest it signs: get an intact copy, or package and sign it again"
                if is_signature_member(names[0])
                else ""
            )
            raise self.fail(
                f"{MANIFEST_NAME} is member {names.index(MANIFEST_NAME) + 1}, not the first member "
                f"(the first is {names[0]!r}){hint}",
                MANIFEST_NAME,
            )
        for name in names[1:]:
            if is_signature_member(name):
                continue  # its name is checked with its content (``_signatures``)
            rest = name[len(WHEELS_DIR) :] if name.startswith(WHEELS_DIR) else None
            if rest is None or "/" in rest or not rest.endswith(".whl"):
                raise self.fail(
                    f"has an unexpected member {name!r}; an archive holds only {MANIFEST_NAME}, wheels/*.whl and "
                    "signatures/*.json",
                    name,
                )

    def _signatures(
        self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], raw_manifest: bytes
    ) -> tuple[SignatureEntry, ...]:
        """The signature members, each well formed, and (``verify_signatures``) each verifying."""
        members = [i for i in infos[1:] if is_signature_member(i.filename)]
        if len(members) > MAX_SIGNATURES:
            raise self.fail(f"carries {len(members)} signatures, more than the limit of {MAX_SIGNATURES}")
        entries = tuple(
            parse_signature(i.filename, read_member(zf, i, self.fail, MAX_SIGNATURE_SIZE), self.fail) for i in members
        )
        if entries and self.verify_signatures:
            from ._signing import verify

            for entry in entries:
                problem = verify(entry, raw_manifest)
                if problem is not None:
                    raise self.fail(
                        f"signature {entry.member!r} does not verify: {problem}. The archive is not what its signer "
                        "signed: get an intact copy from its publisher, or package and sign it again",
                        entry.member,
                    )
        return entries

    def _manifest(self, raw: bytes) -> Manifest:
        from json import JSONDecodeError

        try:
            data = loads_limited(raw.decode("utf-8"), MANIFEST_NAME, max_bytes=MAX_MANIFEST_SIZE)
        except UnicodeDecodeError as exc:
            raise self.fail(f"{MANIFEST_NAME} is not UTF-8 text (byte {exc.start})", MANIFEST_NAME) from exc
        except JSONDecodeError as exc:
            raise self.fail(
                f"{MANIFEST_NAME} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", MANIFEST_NAME
            ) from exc
        except LimitExceeded as exc:
            raise self.fail(str(exc), MANIFEST_NAME) from None
        if not isinstance(data, dict):
            raise self.fail(f"{MANIFEST_NAME} must be a JSON object, not {type(data).__name__}", MANIFEST_NAME)
        version = data.get("format_version")
        if version is None:
            raise self.fail(f"{MANIFEST_NAME} has no format_version", MANIFEST_NAME)
        if version not in READABLE_FORMAT_VERSIONS or isinstance(version, bool):
            raise self.fail(
                f"{MANIFEST_NAME} has format_version {version!r}, which this host does not read (it reads "
                f"{', '.join(map(str, READABLE_FORMAT_VERSIONS))}; it writes {FORMAT_VERSION}); upgrade "
                "cloacina-host or repackage with this one",
                MANIFEST_NAME,
            )
        try:
            check_manifest_counts(data)
        except LimitExceeded as exc:
            raise self.fail(str(exc), MANIFEST_NAME) from None
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
        present = sorted(i.filename for i in zf.infolist()[1:] if not is_signature_member(i.filename))
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
        unpacked = sum(i.file_size for i in zf.infolist())
        for member in expected:
            filename = member[len(WHEELS_DIR) :]
            sha256, size = declared[filename]
            info = zf.getinfo(member)
            if info.file_size != size:
                raise self.fail(
                    f"member {member!r} is {info.file_size} bytes; {MANIFEST_NAME} declares {size}: the wheel was "
                    "altered after packaging",
                    member,
                )
            data = read_member(zf, info, self.fail, MAX_MEMBER_SIZE)
            actual = hashlib.sha256(data).hexdigest()
            if actual != sha256:
                raise self.fail(
                    f"member {member!r} has sha256 {actual}, but {MANIFEST_NAME} declares {sha256}: the wheel was "
                    "altered after packaging",
                    member,
                )
            wheel_facts = read_wheel(data, filename, self.fail)
            unpacked += wheel_facts.unpacked_size
            if unpacked > MAX_UNPACKED_SIZE:
                raise self.fail(
                    f"the archive and its wheels unpack to more than {MAX_UNPACKED_SIZE:,} bytes together "
                    f"(MAX_UNPACKED_SIZE; {unpacked:,} bytes counted up to wheel {filename!r}); a zip bomb? "
                    "Bundle fewer or smaller dependencies",
                    member,
                )
            self._check_tags(member, wheel_facts)
            shadows = stdlib_shadows(wheel_facts.top_level)
            if shadows:
                raise self.fail(
                    f"wheel {filename!r} installs top-level module(s) {', '.join(shadows)}, which shadow the standard "
                    "library (counting the wheel's root and its .data/purelib and .data/platlib); rename them",
                    member,
                )
            if wheel_facts.pth_files:
                raise self.fail(
                    f"wheel {filename!r} installs top-level .pth file(s) {', '.join(wheel_facts.pth_files)}, which "
                    "Python runs at every start-up; a workflow package may not have any: remove them",
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
        pythons = ", ".join(sorted({t.interpreter for t in facts.tags}))
        platforms = ", ".join(sorted({t.platform for t in facts.tags}))
        raise self.fail(
            f"wheel {facts.filename!r} has tags {tags}, none of which this interpreter can load: it needs python "
            f"{pythons} on platform {platforms}, and this host is {host_description()}; package it on the target "
            "platform, or build a pure-Python wheel",
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
        counts = Counter(wf.key for wf in manifest.workflows)
        duplicates = sorted(k for k, n in counts.items() if n > 1)
        if duplicates:
            raise self.fail(f"{MANIFEST_NAME} lists workflow {duplicates[0]!r} more than once", MANIFEST_NAME)

    def _check_graphs(self, manifest: Manifest) -> None:
        for i, wf in enumerate(manifest.workflows):
            try:
                check_graph(wf.tasks)
            except GraphProblem as exc:
                raise self.fail(f"workflows[{i}] {wf.key!r} in {MANIFEST_NAME} {exc}", MANIFEST_NAME) from None


def read_archive(
    source: str | os.PathLike[str] | bytes,
    *,
    require_compatible: bool = True,
    verify_signatures: bool = True,
    name: str | None = None,
) -> Archive:
    """Read and check a ``.cloacina`` archive (a path, or its bytes). Raises ``ArchiveError``, nothing else.

    With ``require_compatible=False`` wheels tagged for other platforms are accepted (``inspect`` shows
    an archive built elsewhere); everything else is checked all the same. Every signature must
    verify over the manifest's bytes, unless ``verify_signatures=False`` (``inspect``, which shows
    which do): their form is checked all the same. ``name``: what messages call bytes (an upload's
    file name; default ``<archive bytes>``).
    """
    if isinstance(source, bytes):
        name, data = name or "<archive bytes>", source
        if len(data) > MAX_ARCHIVE_SIZE:
            raise ArchiveError(
                f"{name}: is {len(data):,} bytes, more than the limit of {MAX_ARCHIVE_SIZE:,} (MAX_ARCHIVE_SIZE).",
                path=name,
            )
    else:
        name = os.fspath(source)
        data = read_archive_file(source)
    return _Reader(name, require_compatible, verify_signatures).read(data)
