"""Fuzzing the archive reader: whatever the bytes or the file, ``read_archive`` returns an archive or
raises ``ArchiveError`` (exit status 1, the source named), within the per-example deadline and the
memory limit; an archive it accepts is shown by ``inspect`` without raw control characters."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import strategies as st
from rich.console import Console

from cloacina_host import Archive, ArchiveError, read_archive
from cloacina_host._packaging._render import dot, inspect_renderable, mermaid

from ._archives import byte_mutations, manifest_documents, structured_zips
from ._budget import fuzz

#: what a terminal would act on: C0 controls but newline, DEL, C1 controls, bidirectional overrides
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def read_or_refuse(data: bytes | Path, *, require_compatible: bool = True) -> None:
    """The property: an ``Archive`` (then rendered cleanly), or an ``ArchiveError`` naming the source."""
    source = "<archive bytes>" if isinstance(data, bytes) else str(data)
    try:
        archive = read_archive(data, require_compatible=require_compatible)
    except ArchiveError as exc:
        refused: ArchiveError = exc
    else:
        return _shown_cleanly(archive)
    assert str(refused).startswith(f"{source}: "), str(refused)
    assert refused.exit_status == 1


def _shown_cleanly(archive: Archive) -> None:
    out = io.StringIO()
    Console(file=out, width=120, color_system=None, force_terminal=False).print(
        inspect_renderable(archive.manifest, archive_size=archive.size)
    )
    shown = out.getvalue() + mermaid(archive.manifest) + dot(archive.manifest)
    found = RAW_CONTROL.search(shown)
    assert found is None, f"inspect shows a raw control character {found.group()!r} from the archive"


def test_mutated_real_archives(real_archives: dict[str, bytes]) -> None:
    for blob in real_archives.values():
        read_archive(blob)  # the bases are valid
    fuzz("archive: mutated real archives", byte_mutations(real_archives), read_or_refuse, share=0.16)


def test_structured_zips(packaging_helpers: tuple[ModuleType, ModuleType]) -> None:
    builders, _ = packaging_helpers
    fuzz("archive: structured zips", structured_zips(builders), read_or_refuse, share=0.14)


def test_manifest_documents(packaging_helpers: tuple[ModuleType, ModuleType]) -> None:
    builders, mutations = packaging_helpers
    wheel = builders.make_wheel()

    def check(text: bytes) -> None:
        read_or_refuse(builders.raw_zip([("manifest.json", text), (f"wheels/{builders.WHEEL_NAME}", wheel)]))

    fuzz("archive: manifest documents", manifest_documents(builders, mutations), check, share=0.18)


def _special(kind: str, where: Path, blob: bytes) -> Path:
    """A path that is not a plain small archive: a FIFO, a directory, a link loop, a device, a sparse file."""
    path = where / f"{kind}.cloacina"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "link-loop":
        path.symlink_to(path)
    elif kind == "dangling-link":
        path.symlink_to(where / "absent")
    elif kind == "dev-zero":
        return Path("/dev/zero")
    elif kind == "sparse-6GiB":
        with path.open("wb") as f:
            f.truncate(6 * 1024**3)
    else:
        path.write_bytes(blob)
    return path


def test_paths(real_archives: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> None:
    kinds = st.sampled_from(["file", "fifo", "directory", "link-loop", "dangling-link", "dev-zero", "sparse-6GiB"])
    cases = st.tuples(kinds, byte_mutations(real_archives), st.booleans())

    def check(case: tuple[str, bytes, bool]) -> None:
        kind, blob, compatible = case
        path = _special(kind, tmp_path_factory.mktemp("paths"), blob)
        try:
            read_or_refuse(path, require_compatible=compatible)
        finally:
            if path.is_file() and not path.is_symlink() and path.parent != Path("/dev"):
                path.unlink()  # the sparse file, at once

    fuzz("archive: paths and special files", cases, check, share=0.08)
