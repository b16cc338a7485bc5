"""What a wheel says about itself: name, version, METADATA, tags, entry points, top-level modules.

Used by the packager on the wheel it has just built and by the archive reader on wheels it does
not trust; so the wheel is read as a hostile zip (``_zipsafe``) and only its metadata files are read.
"""

from __future__ import annotations

import configparser
import io
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.tags import Tag

from ._errors import ArchiveError
from ._zipsafe import WHEEL_LIMITS, check_members, read_member, translated

ENTRY_POINT_GROUP = "cloacina.workflows"
#: Largest metadata file (METADATA, WHEEL, entry_points.txt) read from a wheel.
MAX_METADATA_SIZE = 4 * 1024 * 1024

Fail = Callable[[str, "str | None"], ArchiveError]


@dataclass(frozen=True)
class WheelFacts:
    filename: str
    name: str
    version: str
    tags: tuple[Tag, ...]
    metadata: dict[str, list[str]]
    entry_points: dict[str, str] = field(default_factory=dict)
    top_level: tuple[str, ...] = ()
    pth_files: tuple[str, ...] = ()
    #: Sum of the uncompressed sizes its central directory declares: what installing it writes.
    unpacked_size: int = 0

    @property
    def pure(self) -> bool:
        return all(t.abi == "none" and t.platform == "any" and t.interpreter.startswith("py") for t in self.tags)

    def first(self, key: str) -> str | None:
        values = self.metadata.get(key.lower())
        return values[0] if values else None


def _parse_metadata(raw: bytes) -> dict[str, list[str]]:
    message = BytesParser().parsebytes(raw)
    result: dict[str, list[str]] = {}
    for key, value in message.items():
        result.setdefault(key.lower(), []).append(str(value))
    payload = message.get_payload()
    if isinstance(payload, str) and payload.strip():
        result.setdefault("description", []).append(payload)
    return result


def _parse_entry_points(text: str, fail: Fail, member: str) -> dict[str, str]:
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # entry point names are case-sensitive
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise fail(f"{member} is not a valid entry points file: {exc}", member) from exc
    if not parser.has_section(ENTRY_POINT_GROUP):
        return {}
    return {name.strip(): value.strip() for name, value in parser.items(ENTRY_POINT_GROUP)}


@dataclass(frozen=True)
class TopLevelNames:
    """What a wheel puts at the top of site-packages, laid out as ``installer`` lays it out.

    ``modules``: importable top-level names (packages, modules, extension modules, namespace
    directories) from the wheel's root and from its ``<name>.data/purelib/`` and
    ``<name>.data/platlib/``. ``pth_files``: top-level ``.pth`` files, which the interpreter runs
    at every start-up; the reader refuses wheels that have any.
    """

    modules: tuple[str, ...]
    pth_files: tuple[str, ...]


#: The ``.data`` subdirectories that ``installer`` installs into site-packages.
_SITE_SCHEMES = ("purelib", "platlib")
_MODULE_SUFFIXES = (".py", ".pyc", ".pyd", ".pyw")


def top_level_names(member_names: Iterable[str]) -> TopLevelNames:
    """Top-level names the wheel with these member names installs into site-packages.

    The ``.dist-info`` directory is found from the names (the one at the root); members under its
    ``.data/purelib/`` or ``.data/platlib/`` count as if they were at the root, since that is where
    ``installer`` puts them. Used by the archive reader (standard-library shadowing, ``.pth``
    files) and reusable by any load-time guard.
    """
    names = list(member_names)
    dist_infos = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info") and "/" in n}
    data_dirs = {d[: -len(".dist-info")] + ".data" for d in dist_infos}
    modules: set[str] = set()
    pth: set[str] = set()
    for name in names:
        first, _, rest = name.partition("/")
        if first in dist_infos:
            continue
        if first in data_dirs:
            scheme, _, rest = rest.partition("/")
            if scheme not in _SITE_SCHEMES:
                continue  # scripts, headers, data: not importable
            first, _, rest = rest.partition("/")
        if not first or first == "__pycache__":
            continue
        if rest:
            modules.add(first)
        elif first.endswith(".pth"):
            pth.add(first)
        elif first.endswith(_MODULE_SUFFIXES) or ".so" in first:
            modules.add(first.split(".", 1)[0])
    return TopLevelNames(modules=tuple(sorted(modules)), pth_files=tuple(sorted(pth)))


def stdlib_shadows(modules: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m in sys.stdlib_module_names)


def expand_tags(tag_texts: Iterable[str]) -> frozenset[Tag]:
    """Every tag of compressed tag sets such as ``py2.py3-none-any`` (``packaging.tags.parse_tag``)."""
    from packaging.tags import parse_tag

    out: set[Tag] = set()
    for text in tag_texts:
        out.update(parse_tag(text.strip()))
    return frozenset(out)


def read_wheel(data: bytes, filename: str, fail: Fail) -> WheelFacts:
    """Read and cross-check a wheel's filename, dist-info, METADATA, WHEEL tags and entry points."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename  # not free to import

    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise fail(f"{filename!r} is not a valid wheel file name ({exc})", filename) from exc
    with translated(lambda msg, _m: fail(msg, filename), f"wheel {filename!r}"):
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise fail(f"wheel {filename!r} is not a wheel: it is not a zip file", filename)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()

            def member_fail(msg: str, member: str | None) -> ArchiveError:
                return fail(f"wheel {filename!r}: {msg}", f"{filename}!{member}" if member else filename)

            check_members(infos, WHEEL_LIMITS, member_fail)
            by_name = {i.filename: i for i in infos}
            dist_infos = sorted({n.split("/", 1)[0] for n in by_name if n.split("/", 1)[0].endswith(".dist-info")})
            if len(dist_infos) != 1:
                raise fail(
                    f"wheel {filename!r} is not a wheel: it has {len(dist_infos)} .dist-info directories "
                    f"({', '.join(dist_infos) or 'none'}), not exactly one",
                    filename,
                )
            dist_info = dist_infos[0]
            di_name, _, di_version = dist_info[: -len(".dist-info")].partition("-")
            if canonicalize_name(di_name) != name or di_version != str(version):
                raise fail(
                    f"wheel {filename!r}: its {dist_info} does not match the file name's {name} {version}",
                    filename,
                )

            def read(member: str, required: bool) -> bytes | None:
                info = by_name.get(f"{dist_info}/{member}")
                if info is None:
                    if required:
                        raise fail(f"wheel {filename!r} is not a wheel: it has no {dist_info}/{member}", filename)
                    return None
                return read_member(zf, info, member_fail, MAX_METADATA_SIZE)

            metadata_raw = read("METADATA", True)
            wheel_raw = read("WHEEL", True)
            read("RECORD", True)
            ep_raw = read("entry_points.txt", False)
            assert metadata_raw is not None
            assert wheel_raw is not None
            metadata = _parse_metadata(metadata_raw)
            wheel_meta = _parse_metadata(wheel_raw)
            meta_name = (metadata.get("name") or [""])[0]
            meta_version = (metadata.get("version") or [""])[0]
            if canonicalize_name(meta_name) != name or meta_version != str(version):
                raise fail(
                    f"wheel {filename!r}: METADATA names {meta_name!r} {meta_version!r}, not the file name's "
                    f"{name} {version}",
                    filename,
                )
            declared_texts = wheel_meta.get("tag", [])
            try:
                declared = expand_tags(declared_texts)
            except ValueError as exc:  # a Tag line that is not python-abi-platform
                raise fail(f"wheel {filename!r}: its WHEEL file has a malformed Tag line ({exc})", filename) from exc
            if not declared or not set(tags) <= declared:
                raise fail(
                    f"wheel {filename!r}: its WHEEL file declares tags {sorted(declared_texts)}, which do not cover "
                    f"the file name's tags {sorted(str(t) for t in tags)}",
                    filename,
                )
            entry_points = (
                _parse_entry_points(ep_raw.decode("utf-8"), fail, f"{filename}!{dist_info}/entry_points.txt")
                if ep_raw is not None
                else {}
            )
            layout = top_level_names(by_name)
            unpacked = sum(i.file_size for i in infos)
    return WheelFacts(
        filename=filename,
        name=meta_name,
        version=meta_version,
        tags=tuple(sorted(tags, key=str)),
        metadata=metadata,
        entry_points=entry_points,
        top_level=layout.modules,
        pth_files=layout.pth_files,
        unpacked_size=unpacked,
    )
